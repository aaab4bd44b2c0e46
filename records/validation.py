"""Field validation of a record row before it is written: Model.clean_fields, with a fast path.

The write path validates every row it writes, and clean_fields' generic machinery (to_python,
validate, every validator, per field) cost about as much as the row's insert. For the plain cases
(a non-empty string within a CharField's length and choices, a datetime for a DateTimeField, a date
for a DateField, a finite Decimal or an int that passes its field's validators) a direct check accepts
exactly the values clean_fields accepts unchanged. Every other
value (another type, an empty one, one the check would refuse) goes through the field's own clean(),
so the errors and the cleaned values are Django's.
"""

import datetime as dt
from decimal import Decimal
from functools import cache

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.expressions import DatabaseDefault


def _text_check(field: models.Field, n: int) -> tuple[str, dict] | None:
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
    test, names = "isinstance(v, str) and v != ''", {}
    if limit is not None:
        test += f" and len(v) <= {int(limit)}"
    if field.choices is not None:
        names[f"allowed{n}"] = frozenset(key for key, _label in field.flatchoices)
        test += f" and v in allowed{n}"
    return test, names


def _fast_check(field: models.Field, n: int) -> tuple[str, dict] | None:
    """A test (a Python expression over `v`, and the names it uses) true exactly for the values that
    field.clean() returns unchanged without error; None where Django must always check."""
    if not field.editable or field.generated:
        return None  # Django skips some checks for these: leave them to it
    if isinstance(field, (models.CharField, models.TextField)):
        return _text_check(field, n)
    if field.choices is None and isinstance(field, (models.DecimalField, models.IntegerField)):
        # to_python returns a finite Decimal or an int as it is, so clean() returns it unchanged
        # exactly when the field's validators (digits, range) pass: those run, as run_validators does.
        kind = (
            "type(v) is Decimal and v.is_finite()"
            if isinstance(field, models.DecimalField)
            else "type(v) is int"
        )
        return f"{kind} and passes(validators{n}, v)", {f"validators{n}": tuple(field.validators)}
    if field.validators:
        return None
    if isinstance(field, models.DateTimeField):
        return "isinstance(v, datetime)", {}
    if isinstance(field, models.DateField):
        return "type(v) is date", {}
    return None


def _passes(validators: tuple, value) -> bool:
    try:
        for validator in validators:
            validator(value)
    except ValidationError:
        return False
    return True


@cache
def _plan(model: type, excluded: frozenset[str]):
    """(the fields to check, a function giving the positions of those whose value the fast tests do not
    accept), the function generated once per model and set: one inline test per field instead of a
    loop calling a check per field (the loop cost as much as the checks)."""
    fields = tuple(f for f in model._meta.fields if f.name not in excluded and not f.generated)
    names = {"datetime": dt.datetime, "date": dt.date, "Decimal": Decimal, "passes": _passes}
    body = ["def slow(obj):", "    out = []"]
    for n, field in enumerate(fields):
        if not field.attname.isidentifier():
            raise ValueError(f"{model.__name__}.{field.attname}: not a plain attribute name")
        fast = _fast_check(field, n)
        if fast is None:
            body.append(f"    out.append({n})")
            continue
        test, used = fast
        names.update(used)
        body += [f"    v = obj.{field.attname}", f"    if not ({test}):", f"        out.append({n})"]
    body.append("    return out")
    exec(compile("\n".join(body) + "\n", f"<fast validation of {model.__name__}>", "exec"), names)  # noqa: S102
    return fields, names["slow"]


def clean_fields(obj: models.Model, excluded: frozenset[str]) -> None:
    """obj.clean_fields(exclude=excluded): the same errors, the same cleaned values."""
    fields, slow = _plan(type(obj), excluded)
    errors = {}
    for n in slow(obj):
        field = fields[n]
        raw = getattr(obj, field.attname)
        if field.blank and raw in field.empty_values or isinstance(raw, DatabaseDefault):
            continue
        try:
            setattr(obj, field.attname, field.clean(raw, obj))
        except ValidationError as error:
            errors[field.name] = error.error_list
    if errors:
        raise ValidationError(errors)
