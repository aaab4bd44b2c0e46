from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from .roles import Capability, Role, has_capability


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=16, choices=[(r.value, r.value.title()) for r in Role])
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=[("en", "English"), ("fr", "Français"), ("sw", "Kiswahili")],
        default="en",
    )

    def can(self, capability: Capability) -> bool:
        return has_capability(self, capability)


class ApiToken(models.Model):
    """A bearer token for a system (sync client, OpenMRS/DHIS2 bridge) acting as one user, with that
    user's role. Only the SHA-256 of the token is stored; the token itself is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="what the token is for")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="first characters, to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
