"""`ledger verify`: recompute everything from the rows and report each problem.

Per origin: contiguous indexes, each stored leaf hash against the entry's recomputed hash, every signed
checkpoint (signature, and its root against the root recomputed from the entries at its size, which also
proves successive checkpoints consistent), the stored subtree hashes that proofs are built from, and the
log head; then every record row against the payload of its latest entry, and every object of the ledger
against its row.

The work is cut into tasks (ledger.verify_tasks) by entry-index and row ranges that depend only on the
data: a log range returns the perfect-subtree hashes that tile it, which are appended here in order, so
a checkpoint's root inside a range is the tree of the ranges before it followed by the range's own part.
The tasks run in `workers` processes (ledger.verify_pool), each streaming its range on its own
connection, and their results are combined in task order: any number of workers gives the same report,
and memory stays bounded in each (a range at a time).
"""

import bisect
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.db import connection

from . import merkle, note, verify_pool, verify_tasks
from .entries import log_origin
from .identity import public_key_from_b64
from .models import Checkpoint, Entry, LogHead, Node, TreeNode
from .registry import ledgered_models, partial_log_verifiers
from .selectors import db_get_node

LOG_RANGE = 1 << 14  # entries per log task: a power of two, so that every range starts aligned
ROW_RANGE = 1 << 14  # record rows per table task
MISSING_RANGE = 1 << 16  # entries per missing-rows task (a range of the log, all types at once)


@dataclass
class Problem:
    kind: str
    origin: str = ""
    index: int | None = None
    object_type: str = ""
    object_id: str = ""
    detail: str = ""

    def __str__(self):
        where = f"{self.origin}#{self.index}" if self.index is not None else self.origin
        what = f" {self.object_type} {self.object_id}" if self.object_id else ""
        return f"{self.kind}: {where}{what}: {self.detail}".replace(":  ", ": ")


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    # How the run went, not part of its result (as_dict): worker processes used, and per worker pid its
    # peak resident memory in kB (VmHWM) and CPU seconds; empty when the tasks ran in this process.
    workers: int = 1
    workers_peak_kb: dict[int, int] = field(default_factory=dict)
    workers_cpu_s: dict[int, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "records": self.records,
            "problems": [asdict(p) for p in self.problems],
        }


Progress = Callable[[str, int], None]


@dataclass
class _LogPlan:
    origin: str
    checkpoints: dict[int, bytes]  # size -> root of each checkpoint whose signature verifies
    checkpoint_problems: list[Problem]
    head: int | None  # the log head's size, read before the entries
    tasks: list[tuple]


@dataclass
class _TablePlan:
    ledgered: object
    in_database: bool  # rows are compared in SQL: only those that differ come back, so count the table
    rows: int
    row_tasks: list[tuple]


@dataclass
class _RecordsPlan:
    tables: list[_TablePlan]
    missing_tasks: list[tuple]  # per range of each log, every ledgered type

    @property
    def tasks(self) -> list[tuple]:
        return [*(task for plan in self.tables for task in plan.row_tasks), *self.missing_tasks]


def verify_all(progress: Progress | None = None, workers: int = 1) -> Report:
    """The whole verification; `workers` processes share it where the database allows (see verify_pool)."""
    report = Report()
    origins = set(LogHead.objects.values_list("origin", flat=True))
    origins |= set(Entry.objects.values_list("origin", flat=True).distinct())
    partial = partial_log_verifiers()
    logs = {origin: _plan_log(origin, report) for origin in sorted(origins) if origin not in partial}
    with verify_pool.runner(workers) as pool:
        results = pool.run([task for plan in logs.values() for task in plan.tasks])
        records = _plan_records()  # while the workers start on the logs
        record_results = pool.run(records.tasks)
        for origin in sorted(origins):
            if origin in partial:  # held in part, each entry with its inclusion proof
                entries, checkpoints, problems = partial[origin](origin)
                report.entries += entries
                report.checkpoints += checkpoints
                report.problems += [Problem(kind, origin, i, detail=d) for kind, i, d in problems]
                continue
            _verify_log(logs[origin], results, report, progress)
        _verify_records(records, record_results, report, progress)
        report.workers, report.workers_peak_kb, report.workers_cpu_s = (
            pool.workers,
            pool.workers_peak_kb,
            pool.workers_cpu_s,
        )
    return report


def _signed_checkpoints(origin: str, report: Report) -> tuple[dict[int, bytes], list[Problem]]:
    """size -> root of every checkpoint whose signature verifies; bad ones become problems."""
    node = Node.objects.filter(node_id=origin).first()
    checkpoints: dict[int, bytes] = {}
    problems = []
    for checkpoint in Checkpoint.objects.filter(origin=origin).order_by("size"):
        report.checkpoints += 1
        try:
            if node is None:
                raise note.NoteError("no public key is known for this origin")
            body = note.parse_checkpoint(
                note.open_note(
                    checkpoint.note,
                    log_origin(origin),
                    public_key_from_b64(node.public_key).public_bytes_raw(),
                )
            )
            if body.size != checkpoint.size or body.root_hash != bytes(checkpoint.root_hash):
                raise note.NoteError("the stored size or root differs from the signed note")
        except note.NoteError as error:
            problems.append(Problem("checkpoint_invalid", origin, checkpoint.size, detail=str(error)))
            continue
        checkpoints[body.size] = body.root_hash
    return checkpoints, problems


def _top_index(origin: str) -> int | None:
    return Entry.objects.filter(origin=origin).order_by("-index").values_list("index", flat=True).first()


def _plan_log(origin: str, report: Report) -> _LogPlan:
    checkpoints, problems = _signed_checkpoints(origin, report)
    # The head first: entries appended while verify runs then only ever make the log longer than it.
    head = LogHead.objects.filter(origin=origin).values_list("size", flat=True).first()
    top = _top_index(origin)
    size = 0 if top is None else top + 1
    sizes, tasks = sorted(checkpoints), []
    for begin in range(0, size, LOG_RANGE):
        end = min(begin + LOG_RANGE, size)
        inside = tuple(sizes[bisect.bisect_right(sizes, begin) : bisect.bisect_right(sizes, end)])
        tasks.append((verify_tasks.log_range, (origin, begin, end, inside)))
    return _LogPlan(origin, checkpoints, problems, head, tasks)


def _verify_log(plan: _LogPlan, results, report: Report, progress: Progress | None) -> None:
    origin, checkpoints = plan.origin, plan.checkpoints
    report.problems += plan.checkpoint_problems
    tree = merkle.CompactRange()
    stopped = False
    for _function, (_origin, begin, end, _sizes) in plan.tasks:
        count, events, nodes, stop = next(results)
        if stopped:
            continue  # past a gap the tree cannot be recomputed: later ranges are not judged
        for event in events:
            if event[0] == "problem":
                report.problems.append(Problem(*event[1]))
            elif tree.root_followed_by(event[2]) != checkpoints[event[1]]:
                size = event[1]
                report.problems.append(
                    Problem(
                        "checkpoint_root_mismatch",
                        origin,
                        size - 1,
                        detail=f"entries 0..{size - 1} do not hash to the root signed at size {size} "
                        "(an entry was edited, swapped, inserted or removed)",
                    )
                )
        for level, h in nodes:
            tree.append_subtree(level, h)
        stopped = stop or count < end - begin
        if progress:
            progress("entries", report.entries + tree.size)
    report.entries += tree.size
    size = tree.size
    head = plan.head
    if head is not None and head != size and not any(p.kind == "entries_missing" for p in report.problems):
        report.problems.append(
            Problem(
                "log_truncated",
                origin,
                size,
                detail=f"the log head says {head} entries but {size} remain",
            )
        )
    beyond = [s for s in checkpoints if s > size]
    if beyond:
        report.problems.append(
            Problem(
                "log_truncated",
                origin,
                size,
                detail=f"a checkpoint was signed at size {max(beyond)} but only {size} entries remain",
            )
        )
    _verify_stored_nodes(origin, checkpoints, size, report)


# Problems of the leaves themselves, reported by the log pass at their index.
_LEAF_PROBLEMS = {"leaf_hash_mismatch", "entries_missing", "entry_unreadable", "checkpoint_root_mismatch"}


def _verify_stored_nodes(origin: str, checkpoints: dict[int, bytes], size: int, report: Report) -> None:
    """Proofs are built from stored subtree hashes: they must give the signed roots.

    The levels below stored_tree.STORED_FROM_LEVEL are recomputed from the stored leaves, so a checkpoint
    with a leaf problem below its size (already reported by the log pass) is not judged again here: what
    is left to check are the stored TreeNode rows, where the leaves under the checkpoint are sound."""
    get_node = db_get_node(origin)
    bad_leaves = [p.index for p in report.problems if p.origin == origin and p.kind in _LEAF_PROBLEMS]
    first_bad = min(bad_leaves, default=size)
    for checkpoint_size, root in checkpoints.items():
        if checkpoint_size > size or first_bad < checkpoint_size:
            continue
        try:
            rebuilt = merkle.root_at(checkpoint_size, get_node)
        except (TreeNode.DoesNotExist, Entry.DoesNotExist):
            rebuilt = None
        if rebuilt != root:
            report.problems.append(
                Problem(
                    "tree_nodes_mismatch",
                    origin,
                    checkpoint_size - 1,
                    detail=f"stored subtree hashes do not rebuild the root at size {checkpoint_size}",
                )
            )


def _row_ranges(ledgered) -> tuple[int, list[tuple]]:
    """(rows, [(low, high)]) cutting a table into about ROW_RANGE rows per range, the first and last
    open-ended so that every row falls in exactly one whatever its key."""
    quote = connection.ops.quote_name
    table = quote(ledgered.model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"SELECT count(*), min(rowid), max(rowid) FROM {table}")  # noqa: S608
            rows, low, high = cursor.fetchone()
        else:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            (rows,), low, high = cursor.fetchone(), 0, 1 << 128  # UUIDs: evenly spread
    parts = -(-rows // ROW_RANGE)
    if parts <= 1:
        return rows, [(None, None)]
    cuts = [low + (high - low) * i // parts for i in range(1, parts)]
    if connection.vendor != "sqlite":
        cuts = [uuid.UUID(int=cut) for cut in cuts]
    return rows, list(zip([None, *cuts], [*cuts, None], strict=True))


def _plan_records() -> _RecordsPlan:
    origins = tuple(sorted(Entry.objects.values_list("origin", flat=True).distinct()))
    plans = []
    for ledgered in ledgered_models():
        rows, ranges = _row_ranges(ledgered)
        in_database = bool(ledgered.canonical_sql) and ledgered.canonical_sql(connection) is not None
        row_tasks = [(verify_tasks.table_range, (ledgered.object_type, low, high)) for low, high in ranges]
        plans.append(_TablePlan(ledgered, in_database, rows, row_tasks))
    missing = []
    for origin in origins:
        top = _top_index(origin) or 0
        missing += [
            (verify_tasks.missing_rows, (origins, origin, begin, begin + MISSING_RANGE))
            for begin in range(0, top + 1, MISSING_RANGE)
        ]
    return _RecordsPlan(plans, missing)


def _verify_records(records: _RecordsPlan, results, report: Report, progress: Progress | None) -> None:
    """Every ledgered table against the latest entry of each of its objects, and back."""
    found = []
    for plan in records.tables:
        problems = []
        for _task in plan.row_tasks:
            part, read = next(results)
            problems += part
            if not plan.in_database:
                report.records += read
                if progress:
                    progress("records", report.records)
        if plan.in_database:  # only rows that did not pass came back: count the table
            report.records += plan.rows
            if progress:
                progress("records", report.records)
        found.append(problems)
    missing = [problem for _task in records.missing_tasks for problem in next(results)]
    # Each table's rows, then its missing objects in object order, as one query per type would give them.
    for plan, problems in zip(records.tables, found, strict=True):
        kind = plan.ledgered.object_type
        problems += sorted((p for p in missing if p[3] == kind), key=lambda p: p[4])
        report.problems += [Problem(*p) for p in problems]
