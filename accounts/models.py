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
