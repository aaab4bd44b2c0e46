"""A fixture that makes every `verify_all` of a test run twice, with the usual task ranges and with ranges
of two or three entries and rows (many tasks, checkpoints inside ranges, objects across ranges), and
checks that both give the same report: the work is cut in ranges for worker processes, and where it is
cut must never change what is found."""

import pytest

from ledger import verification


@pytest.fixture(autouse=True)
def verify_also_in_small_ranges(monkeypatch):
    whole = verification.verify_all

    def both(*args, **kwargs):
        report = whole(*args, **kwargs)
        with monkeypatch.context() as small:
            small.setattr(verification, "LOG_RANGE", 2)
            small.setattr(verification, "ROW_RANGE", 3)
            small.setattr(verification, "MISSING_RANGE", 2)
            cut = whole(*args, **kwargs)
        assert cut.as_dict() == report.as_dict()
        return report

    monkeypatch.setattr(verification, "verify_all", both)
