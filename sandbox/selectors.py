"""Reads of sandboxes for pages and commands."""
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


def sandbox_visible_to(*, user, sandbox_id: int) -> Sandbox | None:
    """The sandbox if `user` may watch it; None otherwise."""
    sandbox = Sandbox.objects.select_related("owner").filter(pk=sandbox_id).first()
    if sandbox is None or not can_watch(user=user, sandbox=sandbox):
        return None
    return sandbox


def sandboxes_watchable(*, user) -> QuerySet[Sandbox]:
    """Everything for the operator; for an instructor, their cohorts' learners' sandboxes."""
    queryset = Sandbox.objects.select_related("owner").order_by("-created_at")
    if user.is_superuser:
        return queryset
    return queryset.filter(owner__cohort_memberships__cohort__instructor=user).distinct()
