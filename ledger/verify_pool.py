"""Where `ledger verify`'s tasks run: N forked worker processes, each on its own database connection,
or this process when one worker is asked for or when other connections could not see the same data
(inside a transaction, or an in-memory SQLite database)."""

import multiprocessing
import multiprocessing.util
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from django.db import connection, connections

Task = tuple  # (function, args): a module-level function, so that it can be sent to a worker


def peak_memory_kb() -> int:
    """This process's peak resident memory (VmHWM), in kB; 0 where /proc is not available."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _call(task: Task):
    function, args = task
    return function(*args)


def _call_measured(task: Task):
    result = _call(task)
    times = os.times()
    return result, os.getpid(), peak_memory_kb(), times.user + times.system


def _worker_started() -> None:
    # The parent closed its connections before forking, so this worker opens its own; close it on exit.
    multiprocessing.util.Finalize(None, connections.close_all, exitpriority=10)


def can_fork() -> bool:
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return False
    if connection.in_atomic_block:  # another connection would not see this transaction's rows
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


class Runner:
    """run(tasks) yields each task's result in task order. Per worker pid: its peak resident memory
    (VmHWM, kB) and the CPU seconds it has used."""

    def __init__(self, pool=None, workers: int = 1) -> None:
        self._pool = pool
        self.workers = workers if pool is not None else 1
        self.workers_peak_kb: dict[int, int] = {}
        self.workers_cpu_s: dict[int, float] = {}

    def run(self, tasks: Sequence[Task]) -> Iterator:
        """Hands the tasks to the workers now (with none, runs each as its result is asked for)."""
        if self._pool is None:
            return map(_call, tasks)
        return self._measured(self._pool.map(_call_measured, tasks))

    def _measured(self, results) -> Iterator:
        for result, pid, peak, cpu in results:
            self.workers_peak_kb[pid] = max(peak, self.workers_peak_kb.get(pid, 0))
            self.workers_cpu_s[pid] = max(cpu, self.workers_cpu_s.get(pid, 0.0))
            yield result


@contextmanager
def runner(workers: int) -> Iterator[Runner]:
    if workers <= 1 or not can_fork():
        yield Runner()
        return
    connections.close_all()  # a forked child must never share the parent's connection
    # An executor rather than multiprocessing.Pool: a worker that dies (killed for memory, say) fails the
    # run with BrokenProcessPool instead of leaving it waiting for a result forever.
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_started
    )
    try:
        yield Runner(pool, workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # workers finish and close their connections
