"""URLs of the sandbox pages (the home list, at /, is routed by config/front.py)."""
from django.urls import path

from . import views

urlpatterns = [
    path("sandboxes/rows/", views.sandbox_list_partial, name="sandbox-rows"),
    path("sandboxes/start/", views.sandbox_start, name="sandbox-start"),
    path("sandboxes/<int:sandbox_id>/", views.sandbox_detail, name="sandbox-detail"),
    path("sandboxes/<int:sandbox_id>/status/", views.sandbox_status_partial, name="sandbox-status"),
    path("sandboxes/<int:sandbox_id>/stop/", views.sandbox_stop, name="sandbox-stop"),
    path("staff/sandboxes/", views.staff_sandboxes, name="staff-sandboxes"),
]
