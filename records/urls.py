from django.urls import path

from . import views
from .imaging import views as imaging_views

app_name = "records"
urlpatterns = [
    path("", views.home, name="home"),
    path("patients/new/", views.register, name="register"),
    path("patients/<uuid:patient_id>/", views.chart, name="chart"),
    path("patients/<uuid:patient_id>/encounters/new/", views.encounter_new, name="encounter_new"),
    path("patients/<uuid:patient_id>/attachments/new/", views.attachment_new, name="attachment_new"),
    path("patients/<uuid:patient_id>/merge/", views.merge, name="merge"),
    path("attachments/<uuid:attachment_id>/file", views.attachment_file, name="attachment_file"),
    path(
        "attachments/<uuid:attachment_id>/preview.png",
        imaging_views.attachment_preview,
        name="attachment_preview",
    ),
    path("images/check/", imaging_views.check_image, name="check_image"),
]
