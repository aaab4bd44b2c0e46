"""Fixtures shared by the partial-sync tests."""

import shutil

import pytest

from ..ledger.remote import RemoteNode


@pytest.fixture
def far():
    """A node whose log we hold only in part: three patients, of whom we are sent the second."""
    node = RemoteNode()
    patients = [node.patient(patient_number=f"FAR-{i}-X", given_name=f"Far{i}") for i in range(3)]
    node.encounter(patients[1])
    return node, patients


@pytest.fixture
def pair(tmp_path):
    """Two real nodes (own home and SQLite database each, not started): a parent and a child."""
    from .test_three_nodes import Node  # late: a test module, imported only by the tests that use it

    template = tmp_path / "template"
    template.mkdir()
    Node("rural", template).manage("migrate", "-v", "0")
    made = {}
    for name in ("urban", "mobile"):
        (tmp_path / name).mkdir()
        shutil.copy(template / "db.sqlite3", tmp_path / name / "db.sqlite3")
        made[name] = Node(name, tmp_path / name)
    yield made["urban"], made["mobile"]
    for node in made.values():
        node.stop()
