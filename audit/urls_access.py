from django.urls import path

from . import views_access

app_name = "audit_access"
urlpatterns = [
    path("", views_access.access_log, name="log"),
    path("chain", views_access.access_chain, name="chain"),
    path("anchor", views_access.access_anchor, name="anchor"),
    path("export.json", views_access.access_export, name="export"),
]
