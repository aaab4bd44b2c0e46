"""Writes to accounts: creating users and changing their preferences."""

from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from .models import User
from .roles import Role


class AccountError(ValueError):
    pass


@transaction.atomic
def create_user(
    *, username: str, role: str, password: str, language: str = "en", validate: bool = True
) -> User:
    if role not in {r.value for r in Role}:
        raise AccountError(f"unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}")
    if not username or len(username) > 150:
        raise AccountError("a username of 1 to 150 characters is required")
    if User.objects.filter(username=username).exists():
        raise AccountError(f"user {username!r} already exists")
    user = User(username=username, role=role, language=language)
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.save()
    return user


def set_language(*, user: User, language: str) -> None:
    if language not in {"en", "fr", "sw"}:
        raise AccountError(f"unsupported language {language!r}")
    user.language = language
    user.save(update_fields=["language"])
