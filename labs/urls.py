"""URLs of the lab pages."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.catalog, name="labs-catalog"),
    path("attempts/<int:attempt_id>/", views.attempt_detail, name="labs-attempt"),
    path("<slug:slug>/", views.lab_detail, name="labs-detail"),
    path("<slug:slug>/start/", views.lab_start, name="labs-start"),
    path("<slug:slug>/steps/<slug:step_slug>/panel/", views.step_panel, name="labs-step-panel"),
    path("<slug:slug>/steps/<slug:step_slug>/check/", views.step_check, name="labs-step-check"),
    path("<slug:slug>/steps/<slug:step_slug>/hint/", views.step_hint, name="labs-step-hint"),
    path("<slug:slug>/steps/<slug:step_slug>/reset/", views.step_reset, name="labs-step-reset"),
]
