"""The registry's token service and the ECR console, under /registry/ (config/urls.py)."""
from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("token", views.token, name="token"),
    path("", views.repository_list, name="list"),
    path("repositories/<path:name>/", views.repository_detail, name="detail"),
]
