"""Admin views of sandboxes and the warm pool."""
from django.contrib import admin

from .models import Sandbox, WarmContainer


@admin.register(Sandbox)
class SandboxAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "state", "runtime", "image", "created_at", "expires_at")
    list_filter = ("state", "runtime")
    search_fields = ("owner__username", "container_id")


@admin.register(WarmContainer)
class WarmContainerAdmin(admin.ModelAdmin):
    list_display = ("id", "image", "runtime", "container_id", "created_at")
