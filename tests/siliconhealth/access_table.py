"""Who may reach which URL: the expected outcome of GET and POST for every URL pattern and every role.

Kept next to test_access_control.py, which walks the URL configuration itself: a pattern that is not
listed here fails that test, so a new view cannot be added without deciding who may use it.

Outcomes: "in" = let through to the view (any status below 500 other than those named here);
"login" = redirected to the login page; 401, 403, 404, 405 = exactly that status.
A row lists (anonymous, clinician, nurse, clerk, auditor, admin).
"""

ROLES = ("anon", "clinician", "nurse", "clerk", "auditor", "admin")


def row(*outcomes) -> dict:
    assert len(outcomes) == len(ROLES)
    return dict(zip(ROLES, outcomes, strict=True))


def same(outcome, anon=None) -> dict:
    return row(anon if anon is not None else outcome, *[outcome] * (len(ROLES) - 1))


# Clinic UI and console pages behind @requires(...), by capability (accounts/roles.py).
PATIENTS = row("login", "in", "in", "in", "in", "in")
REGISTER = row("login", "in", "in", "in", 403, 403)
RECORD = row("login", "in", "in", 403, 403, 403)  # also UPLOAD_ATTACHMENTS
MERGE = row("login", "in", 403, "in", 403, 403)
CLINICAL = row("login", "in", "in", 403, "in", 403)
AUDIT = row("login", 403, 403, 403, "in", "in")
MANAGE = row("login", 403, 403, 403, 403, "in")


def auth_then_405(allowed: dict) -> dict:
    """A POST-only view checked by role first: refused as `allowed` says, else 405 for a GET."""
    return {role: (405 if outcome == "in" else outcome) for role, outcome in allowed.items()}


# The FHIR API answers 401 (not a login redirect) to anonymous callers; roles as records.fhir.selectors.
FHIR_PATIENTS = row(401, "in", "in", "in", "in", "in")
FHIR_CLINICAL = row(401, "in", "in", 403, "in", 403)
NOT_FOUND_IN = {"in": 404}


def with_missing_object(allowed: dict) -> dict:
    """Same gate, but the URL names an object that does not exist: admitted roles get 404."""
    return {role: NOT_FOUND_IN.get(outcome, outcome) for role, outcome in allowed.items()}


# name -> {"GET": outcomes, "POST": outcomes}
EXPECTED = {
    # records (clinic UI)
    "records:home": {"GET": PATIENTS, "POST": PATIENTS},
    "records:register": {"GET": REGISTER, "POST": REGISTER},
    "records:chart": {"GET": PATIENTS, "POST": PATIENTS},
    "records:encounter_new": {"GET": RECORD, "POST": RECORD},
    "records:attachment_new": {"GET": RECORD, "POST": RECORD},
    "records:merge": {"GET": auth_then_405(MERGE), "POST": MERGE},
    "records:attachment_file": {"GET": CLINICAL, "POST": CLINICAL},
    "records:attachment_preview": {"GET": CLINICAL, "POST": CLINICAL},
    "records:check_image": {"GET": PATIENTS, "POST": PATIENTS},
    "ledger:history": {"GET": PATIENTS, "POST": PATIENTS},  # a patient's history: demographics only
    # semantic search (records/search): every clinic role; what a role may see is filtered in the answer
    "search:results": {"GET": PATIENTS, "POST": auth_then_405(PATIENTS)},
    "search:api": {"GET": row(401, "in", "in", "in", "in", "in"), "POST": same(405)},
    # accounts
    "accounts:login": {"GET": same("in"), "POST": same("in")},
    "accounts:logout": {"GET": same(405), "POST": same("login")},  # logs out, then shows the login page
    "accounts:language": {"GET": same(405), "POST": same("in", anon="login")},
    # audit console
    # Its path (/audit/) is answered by audit:overview, included first; the name only still reverses.
    "ledger:console": {"GET": AUDIT, "POST": AUDIT},
    "audit:overview": {"GET": AUDIT, "POST": AUDIT},
    "audit:ledger": {"GET": AUDIT, "POST": AUDIT},
    "audit:checkpoints": {"GET": AUDIT, "POST": AUDIT},
    "audit:verify": {"GET": auth_then_405(AUDIT), "POST": AUDIT},
    "audit:verification": {"GET": with_missing_object(AUDIT), "POST": with_missing_object(AUDIT)},
    "audit:alerts": {"GET": AUDIT, "POST": AUDIT},
    "audit:alert": {"GET": with_missing_object(AUDIT), "POST": with_missing_object(AUDIT)},
    "audit:alert_handle": {"GET": auth_then_405(AUDIT), "POST": with_missing_object(AUDIT)},
    "audit:network": {"GET": AUDIT, "POST": AUDIT},
    "audit:reports": {"GET": AUDIT, "POST": AUDIT},
    "audit:report_print": {"GET": AUDIT, "POST": AUDIT},
    "audit:report_csv": {"GET": AUDIT, "POST": AUDIT},
    "audit_access:log": {"GET": AUDIT, "POST": AUDIT},
    "audit_access:chain": {"GET": AUDIT, "POST": AUDIT},
    "audit_access:anchor": {"GET": auth_then_405(AUDIT), "POST": AUDIT},
    "audit_access:export": {"GET": AUDIT, "POST": AUDIT},
    "asicproof:devices": {"GET": AUDIT, "POST": AUDIT},
    "asicproof:decide": {"GET": auth_then_405(MANAGE), "POST": MANAGE},
    "deploy:costmodel": {"GET": AUDIT, "POST": AUDIT},
    # sync: node-to-node endpoints signed with Ed25519, never sessions; the UI for conflicts is clinical
    "sync:sizes": {"GET": same(405), "POST": same(401)},
    "sync:pull": {"GET": same(405), "POST": same(401)},
    "sync:push": {"GET": same(405), "POST": same(401)},
    "sync:served": {"GET": same(405), "POST": same(401)},
    "sync:offered": {"GET": same(405), "POST": same(401)},
    # pairing: the admin page issues codes and joins a parent; the endpoint is authenticated by the code
    # (an empty POST reaches it and is refused as malformed, whoever sends it)
    "sync:pair": {"GET": MANAGE, "POST": MANAGE},
    "sync:pair_accept": {"GET": same(405), "POST": same("in")},
    "sync:conflicts": {"GET": CLINICAL, "POST": CLINICAL},
    "sync:conflict": {"GET": with_missing_object(CLINICAL), "POST": with_missing_object(CLINICAL)},
    "sync:patient_conflicts": {"GET": CLINICAL, "POST": CLINICAL},
    # public
    "health": {"GET": same("in"), "POST": same(405)},
    "fhir:metadata": {"GET": same("in"), "POST": same(405)},
    "api-docs": {"GET": same("in"), "POST": same(405)},
    # FHIR API (GET reads; POST writes reach the importer, which checks each resource's role)
    "fhir-base-no-slash": {"GET": same(405), "POST": same("in", anon=401)},
    "fhir:base": {"GET": same(405), "POST": same("in", anon=401)},
    "fhir:export": {"GET": FHIR_PATIENTS, "POST": same(405)},  # ?_type=Patient
    "fhir:everything": {"GET": FHIR_CLINICAL, "POST": same(405)},
    "fhir:type": {"GET": FHIR_PATIENTS, "POST": same("in", anon=401)},  # Patient
    "fhir:instance": {"GET": FHIR_PATIENTS, "POST": same(405)},  # Patient/<id>
}
