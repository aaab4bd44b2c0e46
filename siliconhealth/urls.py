from django.urls import include, path

from records.fhir import views as fhir_views

from . import views

urlpatterns = [
    path("", include("records.urls")),
    path("", include("records.search.urls")),  # /search/ and /api/search
    path("accounts/", include("accounts.urls")),
    path("audit/devices/", include("asicproof.urls")),
    path("audit/costmodel/", include("deploy.urls")),
    path("audit/access/", include("audit.urls_access")),
    path("audit/", include("audit.urls")),  # the console; before ledger.urls, which owns audit/history/
    path("audit/", include("ledger.urls")),
    path("sync/", include("sync.urls")),
    path("api/health", views.health, name="health"),
    # FHIR clients POST transaction bundles to the base without a trailing slash too.
    path("fhir", fhir_views.base, name="fhir-base-no-slash"),
    path("fhir/", include("records.fhir.urls")),
    path("api/docs", include("records.fhir.docs_urls")),
]
