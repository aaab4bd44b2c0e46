import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from ledger import selectors


class Command(BaseCommand):
    help = "Facts about this node: `node info [--json]`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        info = sub.add_parser("info", help="node id, tier, public key, log size, latest checkpoint")
        info.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            node = selectors.self_node()
        except DatabaseError as error:
            raise CommandError(
                f"the database is not ready ({error}); run `manage.py migrate`", returncode=2
            ) from None
        checkpoint = selectors.latest_checkpoint(node.node_id)
        facts = {
            "node_id": node.node_id,
            "tier": settings.TIER,
            "public_key": node.public_key,
            "prefix": node.prefix,
            "log_size": selectors.log_size(node.node_id),
            "latest_checkpoint": (
                {
                    "size": checkpoint.size,
                    "root_hash": bytes(checkpoint.root_hash).hex(),
                    "created_at": checkpoint.created_at.isoformat(),
                }
                if checkpoint
                else None
            ),
            "home": str(settings.SILICONHEALTH_HOME),
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        }
        if options["json"]:
            self.stdout.write(json.dumps(facts, sort_keys=True))
            return
        for key, value in facts.items():
            if key == "latest_checkpoint":
                value = f"size {value['size']} root {value['root_hash']}" if value else "none yet"
            self.stdout.write(f"{key:18} {value}")
