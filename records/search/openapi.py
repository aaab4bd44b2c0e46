"""The search endpoint's part of the OpenAPI description (GET /api/docs): /api/search and the JSON it
answers with. Built from the same constants the endpoint checks (kinds, limits), so they agree."""

from .chunking import KIND_NAMES
from .forms import MAX_CODES
from .services import MAX_QUESTION_CHARS

JSON = "application/json"


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/SearchError"}}},
    }


def _query(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def routes() -> list[tuple[str, str, dict]]:
    operation = {
        "summary": "Ask the records a question (offline hybrid search, extractive answer with citations)",
        "description": "Only what the caller's role may read is searched (a clerk never retrieves clinical "
        "passages). Every search is written to the access log. `found` is false, with no passages, when "
        "nothing supports an answer well enough.",
        "parameters": [
            _query(
                "q", "the question", {"type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS}, True
            ),
            _query(
                "patient",
                "only this patient (and the records merged into them)",
                {"type": "string", "format": "uuid"},
            ),
            _query(
                "from", "only records dated on or after (YYYY-MM-DD)", {"type": "string", "format": "date"}
            ),
            _query(
                "to", "only records dated on or before (YYYY-MM-DD)", {"type": "string", "format": "date"}
            ),
            _query(
                "type",
                f"comma-separated kinds among {', '.join(KIND_NAMES)}",
                {"type": "string", "pattern": f"^({'|'.join(KIND_NAMES)})(,({'|'.join(KIND_NAMES)}))*$"},
            ),
            _query(
                "code", f"comma-separated ICD-10 or LOINC codes (at most {MAX_CODES})", {"type": "string"}
            ),
        ],
        "responses": {
            "200": {
                "description": "The answer: passages best first, each citing its record and ledger entry",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/SearchAnswer"}}},
            },
            "400": _error("A bad question or filter (empty, too long, control characters, a malformed date)"),
            "401": _error("No valid token or session"),
            "403": _error("The user's role may not search the records"),
            "404": _error("No such patient"),
        },
    }
    return [("/api/search", "get", operation)]


def schemas() -> dict:
    string = {"type": "string"}
    passage = {
        "type": "object",
        "required": ["record", "record_type", "patient", "text", "score", "ledger_entry", "verified", "link"],
        "properties": {
            "record": {"type": "string", "format": "uuid"},
            "record_type": string,
            "kind": {"type": "string", "enum": list(KIND_NAMES)},
            "patient": {"type": "string", "format": "uuid"},
            "date": {"type": "string", "description": "YYYY-MM-DD, or empty"},
            "text": string,
            "highlights": {"type": "array", "items": string, "description": "the sentences that match"},
            "score": {"type": "string", "description": "fused rank score, a decimal string"},
            "support": {
                "type": "string",
                "description": "what the answer threshold compares, a decimal string",
            },
            "ledger_entry": {
                "type": "object",
                "properties": {"origin": string, "index": {"type": "integer", "nullable": True}},
            },
            "verified": {"type": "boolean", "description": "the record equals its latest ledger entry"},
            "inclusion_proof": {
                "type": "boolean",
                "description": "the entry's inclusion proof checks against the newest signed checkpoint",
            },
            "link": {"type": "string", "description": "the patient's chart"},
        },
    }
    return {
        "SearchPassage": passage,
        "SearchAnswer": {
            "type": "object",
            "required": ["question", "found", "passages"],
            "properties": {
                "question": string,
                "found": {"type": "boolean"},
                "answer": {"type": "string", "description": "generated prose; empty for extractive answers"},
                "passages": {"type": "array", "items": {"$ref": "#/components/schemas/SearchPassage"}},
            },
        },
        "SearchError": {"type": "object", "required": ["error"], "properties": {"error": string}},
    }
