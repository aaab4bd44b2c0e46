from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("records.urls")),
    path("accounts/", include("accounts.urls")),
    path("audit/devices/", include("asicproof.urls")),
    path("audit/", include("ledger.urls")),
    path("api/health", views.health, name="health"),
]
