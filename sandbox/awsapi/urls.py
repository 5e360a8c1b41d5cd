"""The AWS console pages of the site (the edge endpoint itself is routed elsewhere): the learner's access keys."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.access_keys, name="aws-keys"),
    path("create/", views.access_key_create, name="aws-key-create"),
    path("<str:access_key_id>/revoke/", views.access_key_revoke, name="aws-key-revoke"),
]
