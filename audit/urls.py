from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("ledger/<str:origin>/", views.ledger_log, name="ledger"),
    path("ledger/<str:origin>/checkpoints/", views.ledger_checkpoints, name="checkpoints"),
    path("verify/", views.verify_now, name="verify"),
    path("verify/<int:pk>/", views.verification, name="verification"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert"),
    path("alerts/<int:pk>/handle", views.alert_handle, name="alert_handle"),
    path("network/", views.network, name="network"),
    path("reports/", views.report_form, name="reports"),
    path("reports/print", views.report_print, name="report_print"),
    path("reports/audit.csv", views.report_csv, name="report_csv"),
]
