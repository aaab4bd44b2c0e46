"""A write refused because the node is catching up after a restore gets a clear page, not a 500."""

from django.http import JsonResponse
from django.shortcuts import render

from .catchup import CatchingUp


class CatchingUpMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, CatchingUp):
            return None
        message = str(exception)
        if request.path.startswith(("/fhir", "/api")):
            response = JsonResponse({"error": message, "catching_up": True}, status=503)
        else:
            response = render(request, "ledger/catching_up.html", {"message": message}, status=503)
        response["Retry-After"] = "300"
        return response
