"""The sync network page's drawing: which node hangs under which, coloured by how sync is going."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from siliconhealth.tiers import TIER_NAMES

from .svgplot import TreeNode

LATE_AFTER = timedelta(days=1)


def tier_labels() -> list[str]:
    labels = {
        "regional_hospital": _("Regional hospital"),
        "urban_centre": _("Urban health centre"),
        "rural_clinic": _("Rural clinic"),
        "mobile_point": _("Mobile health point"),
    }
    return [labels.get(name, name) for name in TIER_NAMES]


def _state(row: dict, now) -> str:
    if row["is_self"]:
        return "self"
    if row["revoked"]:
        return "revoked"
    if row["last_error"] and row["failures"]:
        return "failing"
    if row["role"] and (row["last_success"] is None or now - row["last_success"] > LATE_AFTER):
        return "late"
    return "ok"


def tree_nodes(rows: list[dict]) -> tuple[list[TreeNode], list[str]]:
    """Rows of sync.selectors.network_nodes -> tree nodes: our parent above us, our children below;
    nodes we only hold a log of are placed by tier, unlinked (we do not know their parent)."""
    now = timezone.now()
    self_id = next((r["node_id"] for r in rows if r["is_self"]), None)
    nodes = []
    for row in rows:
        level = TIER_NAMES.index(row["tier"]) if row["tier"] in TIER_NAMES else len(TIER_NAMES) - 1
        parent = None
        if row["role"] == "child":
            parent = self_id
        nodes.append(TreeNode(row["node_id"], row["node_id"][:16], level, parent, _state(row, now)))
    parents = [r["node_id"] for r in rows if r["role"] == "parent"]
    if parents and self_id:
        nodes = [
            TreeNode(n.key, n.label, n.level, parents[0], n.state) if n.key == self_id else n for n in nodes
        ]
    return nodes, tier_labels()
