"""/api/docs: the OpenAPI description (included from siliconhealth/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [path("", views.openapi_document, name="api-docs")]
