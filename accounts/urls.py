"""URLs of Sandcloud's own account pages, beside allauth's under /accounts/."""
from django.urls import path

from . import views

urlpatterns = [
    path("settings/", views.account_settings, name="account-settings"),
    path("delete/", views.account_delete, name="account-delete"),
]
