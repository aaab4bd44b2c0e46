from django.urls import path

from . import conflict_views, pairing_views, views

app_name = "sync"

urlpatterns = [
    path("sizes", views.sizes, name="sizes"),
    path("pull", views.pull, name="pull"),
    path("push", views.push, name="push"),
    path("served", views.served, name="served"),
    path("offered", views.offered, name="offered"),
    path("pair/", pairing_views.pair_page, name="pair"),
    path("pair/accept", pairing_views.pair_accept, name="pair_accept"),
    path("conflicts/", conflict_views.conflict_list, name="conflicts"),
    path("conflicts/<int:conflict_id>/", conflict_views.conflict_resolve, name="conflict"),
    path("conflicts/patient/<uuid:patient_id>/", conflict_views.patient_conflicts, name="patient_conflicts"),
]
