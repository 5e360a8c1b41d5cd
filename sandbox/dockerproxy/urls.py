"""The learner's Docker page (under /docker/)."""
from django.urls import path

from . import views

app_name = "docker"
urlpatterns = [path("", views.docker_page, name="overview")]
