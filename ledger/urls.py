from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "ledger"
urlpatterns = [
    # The console moved to the audit app (audit:overview, also at /audit/); the old name still reverses.
    path("", RedirectView.as_view(pattern_name="audit:overview"), name="console"),
    path("history/<uuid:object_id>/", views.history, name="history"),
]
