"""Fixtures shared by the partial-sync tests."""

import pytest

from ..ledger.remote import RemoteNode


@pytest.fixture
def far():
    """A node whose log we hold only in part: three patients, of whom we are sent the second."""
    node = RemoteNode()
    patients = [node.patient(patient_number=f"FAR-{i}-X", given_name=f"Far{i}") for i in range(3)]
    node.encounter(patients[1])
    return node, patients
