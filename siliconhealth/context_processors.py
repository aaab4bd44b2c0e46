from django.conf import settings

from accounts.roles import Capability, has_capability


def node(request):
    user = getattr(request, "user", None)
    return {
        "node_tier": settings.PROFILE.label,
        "perms_view_audit": has_capability(user, Capability.VIEW_AUDIT),
        "perms_register": has_capability(user, Capability.REGISTER_PATIENTS),
        "perms_record": has_capability(user, Capability.RECORD_ENCOUNTERS),
        "perms_upload": has_capability(user, Capability.UPLOAD_ATTACHMENTS),
        "perms_merge": has_capability(user, Capability.MERGE_PATIENTS),
        "perms_manage_node": has_capability(user, Capability.MANAGE_NODE),
        "user_language_choices": [("en", "English"), ("fr", "Français"), ("sw", "Kiswahili")],
    }
