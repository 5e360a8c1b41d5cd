"""Reads of sandboxes for pages and commands."""
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from .models import Sandbox
from .states import ACTIVE


def sandboxes_for_user(*, user) -> QuerySet[Sandbox]:
    return Sandbox.objects.filter(owner=user).order_by("-created_at")


def sandboxes_active(*, user=None) -> QuerySet[Sandbox]:
    queryset = Sandbox.objects.filter(state__in=ACTIVE).select_related("owner").order_by("-created_at")
    return queryset.filter(owner=user) if user is not None else queryset


def can_watch(*, user, sandbox: Sandbox) -> bool:
    """Its owner, an instructor of a cohort the owner is in, or a superuser (the operator)."""
    from cohorts.selectors import instructs

    return sandbox.owner_id == user.pk or instructs(instructor=user, learner_id=sandbox.owner_id)


def sandbox_for_viewer(*, user, sandbox_id: int) -> Sandbox:
    """The sandbox if `user` may watch it. Raises Sandbox.DoesNotExist or PermissionDenied (another learner's)."""
    sandbox = Sandbox.objects.select_related("owner").get(pk=sandbox_id)
    if not can_watch(user=user, sandbox=sandbox):
        raise PermissionDenied("This sandbox belongs to another learner.")
    return sandbox


def sandboxes_watchable(*, user) -> QuerySet[Sandbox]:
    """Everything for the operator; for an instructor, their cohorts' learners' sandboxes."""
    queryset = Sandbox.objects.select_related("owner").order_by("-created_at")
    if user.is_superuser:
        return queryset
    return queryset.filter(owner__cohort_memberships__cohort__instructor=user).distinct()
