from django.urls import path

from . import views

app_name = "asicproof"
urlpatterns = [
    path("", views.devices, name="devices"),
    path("<str:worker>/decide", views.decide, name="decide"),
]
