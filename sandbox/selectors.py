"""Reads of sandboxes for pages and commands."""
from django.db.models import QuerySet

from .models import Sandbox
from .states import ACTIVE


def sandboxes_for_user(*, user) -> QuerySet[Sandbox]:
    return Sandbox.objects.filter(owner=user).order_by("-created_at")


def sandboxes_active(*, user=None) -> QuerySet[Sandbox]:
    queryset = Sandbox.objects.filter(state__in=ACTIVE).select_related("owner").order_by("-created_at")
    return queryset.filter(owner=user) if user is not None else queryset


def sandbox_visible_to(*, user, sandbox_id: int) -> Sandbox | None:
    """The sandbox if `user` may see it (its owner, or staff); None otherwise."""
    sandbox = Sandbox.objects.select_related("owner").filter(pk=sandbox_id).first()
    if sandbox is None or not (sandbox.owner_id == user.pk or user.is_staff):
        return None
    return sandbox
