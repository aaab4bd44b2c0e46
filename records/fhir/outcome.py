"""OperationOutcome: every refusal names each problem (where, in FHIRPath, and why)."""

from dataclasses import dataclass

# FHIR issue-type codes used here (http://hl7.org/fhir/issue-type).
ISSUE_CODES = {
    "invalid",
    "structure",
    "required",
    "value",
    "invariant",
    "security",
    "login",
    "forbidden",
    "processing",
    "not-supported",
    "duplicate",
    "not-found",
    "conflict",
    "too-long",
    "informational",
}


SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


@dataclass(frozen=True)
class Issue:
    code: str
    diagnostics: str
    expression: str = ""
    severity: str = "error"

    def as_fhir(self) -> dict:
        issue = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue

    def __str__(self):
        where = f"{self.expression}: " if self.expression else ""
        return f"{self.severity} {self.code}: {where}{self.diagnostics}"


class FhirError(Exception):
    """A refused request: the HTTP status and each issue. Nothing was changed."""

    def __init__(self, issues: list[Issue], status: int = 400):
        super().__init__("; ".join(str(i) for i in issues))
        self.issues = issues
        self.status = status

    def outcome(self) -> dict:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict:
    if not issues:
        issues = [Issue("informational", "all OK", severity="information")]
    ranked = sorted(issues, key=lambda issue: SEVERITY_ORDER.get(issue.severity, 9))  # errors first
    return {"resourceType": "OperationOutcome", "issue": [issue.as_fhir() for issue in ranked]}


def errors(issues: list[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.severity in {"error", "fatal"}]
