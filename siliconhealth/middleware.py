from django.conf import settings

# Everything (CSS, htmx, images) is served by the node itself: clinics are offline, so 'self' is enough.
_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", getattr(settings, "CONTENT_SECURITY_POLICY", _POLICY))
        return response


class PrivateNoStoreMiddleware:
    """Pages served to a signed-in user (charts, images, audit pages) are never kept in the browser's
    cache: on a shared or stolen clinic laptop, Back after logout or the cache folder would show them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if getattr(user, "is_authenticated", False) and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store, private"
        return response
