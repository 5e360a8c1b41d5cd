"""URLs of the editor's file endpoints, under /sandboxes/<id>/files/."""
from django.urls import path

from . import views

urlpatterns = [
    path("sandboxes/<int:sandbox_id>/files/list", views.file_list, name="files-list"),
    path("sandboxes/<int:sandbox_id>/files/read", views.file_read, name="files-read"),
    path("sandboxes/<int:sandbox_id>/files/download", views.file_download, name="files-download"),
    path("sandboxes/<int:sandbox_id>/files/write", views.file_write, name="files-write"),
    path("sandboxes/<int:sandbox_id>/files/create", views.file_create, name="files-create"),
    path("sandboxes/<int:sandbox_id>/files/rename", views.file_rename, name="files-rename"),
    path("sandboxes/<int:sandbox_id>/files/delete", views.file_delete, name="files-delete"),
    path("sandboxes/<int:sandbox_id>/files/upload", views.file_upload, name="files-upload"),
]
