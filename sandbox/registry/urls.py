"""The registry's token service, under /registry/ (config/urls.py)."""
from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("token", views.token, name="token"),
]
