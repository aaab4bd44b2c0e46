from django.urls import path

from . import views

app_name = "fhir"
urlpatterns = [
    path("", views.base, name="base"),
    path("metadata", views.metadata, name="metadata"),
    path("$export", views.bulk_export, name="export"),
    path("Patient/<str:object_id>/$everything", views.everything, name="everything"),
    path("<str:resource_type>", views.type_endpoint, name="type"),
    path("<str:resource_type>/<str:object_id>", views.instance, name="instance"),
]
