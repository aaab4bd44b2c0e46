from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from .roles import Capability, has_capability


def requires(*capabilities: Capability):
    """Allow the view only to a signed-in user whose role has every listed capability."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not all(has_capability(request.user, c) for c in capabilities):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.required_capabilities = capabilities
        return wrapper

    return decorator
