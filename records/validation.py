"""Field validation of a record row before it is written: Model.clean_fields, with a fast path.

The write path validates every row it writes, and clean_fields' generic machinery (to_python,
validate, every validator, per field) cost about as much as the row's insert. For the plain cases
(a non-empty string within a CharField's length and choices, a datetime for a DateTimeField, a date
for a DateField) a direct check accepts exactly the values clean_fields accepts unchanged. Every other
value (another type, an empty one, one the check would refuse) goes through the field's own clean(),
so the errors and the cleaned values are Django's.
"""

import datetime as dt
from functools import cache

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.expressions import DatabaseDefault


def _text_check(field: models.Field):
    validators = field.validators
    if isinstance(field, models.TextField) and not validators:
        limit = None
    elif (
        isinstance(field, models.CharField)
        and len(validators) == 1
        and type(validators[0]) is MaxLengthValidator
        and validators[0].limit_value == field.max_length
    ):
        limit = field.max_length
    else:
        return None  # a field with validators of its own: Django checks it
    allowed = frozenset(key for key, _label in field.flatchoices) if field.choices is not None else None

    def check(value) -> bool:
        return (
            isinstance(value, str)
            and value != ""
            and (limit is None or len(value) <= limit)
            and (allowed is None or value in allowed)
        )

    return check


def _fast_check(field: models.Field):
    """A function telling whether a value is one field.clean() returns unchanged without error, or None."""
    if not field.editable or field.generated:
        return None  # Django skips some checks for these: leave them to it
    if isinstance(field, (models.CharField, models.TextField)):
        return _text_check(field)
    if field.validators:
        return None
    if isinstance(field, models.DateTimeField):
        return lambda value: isinstance(value, dt.datetime)
    if isinstance(field, models.DateField):
        return lambda value: type(value) is dt.date
    return None


@cache
def _plan(model: type, excluded: frozenset[str]) -> tuple[tuple[models.Field, object], ...]:
    return tuple(
        (field, _fast_check(field))
        for field in model._meta.fields
        if field.name not in excluded and not field.generated
    )


def clean_fields(obj: models.Model, excluded: frozenset[str]) -> None:
    """obj.clean_fields(exclude=excluded): the same errors, the same cleaned values."""
    errors = {}
    for field, fast in _plan(type(obj), excluded):
        raw = getattr(obj, field.attname)
        if fast is not None and fast(raw):
            continue
        if field.blank and raw in field.empty_values or isinstance(raw, DatabaseDefault):
            continue
        try:
            setattr(obj, field.attname, field.clean(raw, obj))
        except ValidationError as error:
            errors[field.name] = error.error_list
    if errors:
        raise ValidationError(errors)
