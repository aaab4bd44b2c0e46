"""Roles and what each may do. One table, read by every view, API endpoint and selector.

A clerk registers people but never reads clinical content; an auditor reads everything and
writes nothing clinical; an admin runs the node (users, devices, peers) without clinical access.
"""

from enum import StrEnum


class Role(StrEnum):
    CLINICIAN = "clinician"
    NURSE = "nurse"
    CLERK = "clerk"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Capability(StrEnum):
    VIEW_PATIENTS = "view_patients"  # demographics, patient list, encounter dates
    REGISTER_PATIENTS = "register_patients"
    MERGE_PATIENTS = "merge_patients"
    VIEW_CLINICAL = "view_clinical"  # notes, diagnoses, prescriptions, vitals, attachments
    RECORD_ENCOUNTERS = "record_encounters"  # encounters with vitals and notes
    DIAGNOSE_AND_PRESCRIBE = "diagnose_and_prescribe"
    UPLOAD_ATTACHMENTS = "upload_attachments"
    VIEW_AUDIT = "view_audit"
    MANAGE_NODE = "manage_node"  # users, devices, peers


ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.CLINICIAN: frozenset(
        {
            Capability.VIEW_PATIENTS,
            Capability.REGISTER_PATIENTS,
            Capability.MERGE_PATIENTS,
            Capability.VIEW_CLINICAL,
            Capability.RECORD_ENCOUNTERS,
            Capability.DIAGNOSE_AND_PRESCRIBE,
            Capability.UPLOAD_ATTACHMENTS,
        }
    ),
    Role.NURSE: frozenset(
        {
            Capability.VIEW_PATIENTS,
            Capability.REGISTER_PATIENTS,
            Capability.VIEW_CLINICAL,
            Capability.RECORD_ENCOUNTERS,
            Capability.UPLOAD_ATTACHMENTS,
        }
    ),
    Role.CLERK: frozenset(
        {Capability.VIEW_PATIENTS, Capability.REGISTER_PATIENTS, Capability.MERGE_PATIENTS}
    ),
    Role.AUDITOR: frozenset({Capability.VIEW_PATIENTS, Capability.VIEW_CLINICAL, Capability.VIEW_AUDIT}),
    Role.ADMIN: frozenset({Capability.VIEW_PATIENTS, Capability.VIEW_AUDIT, Capability.MANAGE_NODE}),
}


def has_capability(user, capability: Capability) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    try:
        role = Role(user.role)
    except ValueError:
        return False
    return capability in ROLE_CAPABILITIES[role]
