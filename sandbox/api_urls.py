"""URLs of the sandbox JSON API (mounted at /api/)."""
from django.urls import path

from . import api

urlpatterns = [
    path("sandboxes/", api.sandboxes, name="api-sandboxes"),
    path("sandboxes/<int:sandbox_id>/", api.sandbox_detail, name="api-sandbox"),
    path("sandboxes/<int:sandbox_id>/stop/", api.sandbox_stop, name="api-sandbox-stop"),
    path("sandboxes/<int:sandbox_id>/exec/", api.sandbox_exec, name="api-sandbox-exec"),
    path("sandboxes/<int:sandbox_id>/recording.cast", api.sandbox_recording, name="api-sandbox-recording"),
]
