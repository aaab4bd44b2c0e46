"""The search's input, from the UI, the API and the command alike: a question and optional filters.
Bad input is a clear error (BadQuestion), never a partial search."""

import datetime as dt
import uuid

from django.utils.translation import gettext as _

from .chunking import KIND_NAMES
from .selectors import SearchFilters
from .services import BadQuestion, validate_question

MAX_CODES = 10


def _date(value: str, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadQuestion(_("%(name)s must be a date (YYYY-MM-DD).") % {"name": name}) from None


def parse(params, *, patient_ids: tuple = ()) -> tuple[str, SearchFilters]:
    """(question, filters) from a mapping such as request.GET or a JSON object."""
    question = validate_question(params.get("q", ""))
    kinds = tuple(k for k in str(params.get("type", "") or "").split(",") if k)
    if any(k not in KIND_NAMES for k in kinds):
        raise BadQuestion(_("The type must be among %(kinds)s.") % {"kinds": ", ".join(KIND_NAMES)})
    codes = tuple(c.strip().upper() for c in str(params.get("code", "") or "").split(",") if c.strip())
    if len(codes) > MAX_CODES or any(len(c) > 32 for c in codes):
        raise BadQuestion(_("At most %(count)d codes of at most 32 characters.") % {"count": MAX_CODES})
    date_from = _date(str(params.get("from", "") or ""), "from")
    date_to = _date(str(params.get("to", "") or ""), "to")
    if date_from and date_to and date_from > date_to:
        raise BadQuestion(_("The start date (from) is after the end date (to)."))
    patient = str(params.get("patient", "") or "")
    if patient and not patient_ids:
        try:
            patient_ids = (uuid.UUID(patient),)
        except ValueError:
            raise BadQuestion(_("The patient must be a patient id (UUID).")) from None
    return question, SearchFilters(
        patient_ids=patient_ids, date_from=date_from, date_to=date_to, kinds=kinds, codes=codes
    )
