from django.urls import path

from . import views

app_name = "ledger"
urlpatterns = [
    path("", views.console, name="console"),
    path("history/<uuid:object_id>/", views.history, name="history"),
]
