"""API tokens for systems (an OpenMRS or DHIS2 bridge, a script): "Authorization: Bearer <token>".

A token acts as one user, with that user's role as it is at each request. Only the SHA-256 of a
token is stored (tokens are 256-bit random, so a plain hash is enough); the token is shown once.
"""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, User

PREFIX = "shk_"


class TokenError(ValueError):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def issue_token(*, user: User, name: str = "") -> str:
    """A new token for `user`; returns the token itself, which is not kept anywhere."""
    if not user.is_active:
        raise TokenError(f"user {user.username!r} is not active")
    token = PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name=name[:100], key_hash=_hash(token), prefix=token[:12])
    return token


@transaction.atomic
def revoke_tokens(*, user: User) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def user_for_token(token: str) -> User | None:
    """The active user a live token belongs to, or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = (
        ApiToken.objects.select_related("user").filter(key_hash=_hash(token), revoked_at__isnull=True).first()
    )
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user
