from django.urls import include, path

from records.fhir import views as fhir_views

from . import views

urlpatterns = [
    path("", include("records.urls")),
    path("accounts/", include("accounts.urls")),
    path("audit/devices/", include("asicproof.urls")),
    path("audit/", include("ledger.urls")),
    path("sync/", include("sync.urls")),
    path("api/health", views.health, name="health"),
    # FHIR clients POST transaction bundles to the base without a trailing slash too.
    path("fhir", fhir_views.base, name="fhir-base-no-slash"),
    path("fhir/", include("records.fhir.urls")),
    path("api/docs", include("records.fhir.docs_urls")),
]
