"""Reading schedules: a learner's, those aimed at one function, one by name, and those due to fire."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from sandbox.awsapi.models import AwsAccount

from .errors import group_not_found, schedule_not_found
from .models import DEFAULT_GROUP, Schedule


def schedules_for(*, account: AwsAccount) -> QuerySet[Schedule]:
    """Every schedule in the account, by group and name."""
    return Schedule.objects.filter(account=account).select_related("account").order_by("group_name", "name")


def schedules_for_target(*, account: AwsAccount, target_arn_prefix: str) -> QuerySet[Schedule]:
    """The account's schedules that fire the target `target_arn_prefix` names, e.g. a function's unqualified ARN:
    those aimed at it exactly and at any of its qualifiers (`...:function:hello:prod`), never at `hello2`."""
    prefix = target_arn_prefix.rstrip(":")
    return schedules_for(account=account).filter(Q(target_arn=prefix) | Q(target_arn__startswith=prefix + ":"))


def schedule_get(*, account: AwsAccount, name: str, group_name: str | None = None) -> Schedule:
    """The schedule, or ScheduleError (ResourceNotFoundException) as AWS words it."""
    group_name = group_name or DEFAULT_GROUP
    if group_name != DEFAULT_GROUP:
        raise group_not_found(group_name)
    schedule = schedules_for(account=account).filter(group_name=group_name, name=name).first()
    if schedule is None:
        raise schedule_not_found(name)
    return schedule


def schedules_due(*, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """(id, occurrence) of the enabled schedules due at `now`, the longest-waiting first."""
    due = (Schedule.objects.filter(state=Schedule.State.ENABLED, next_fire_at__lte=now)
           .order_by("next_fire_at", "pk").values_list("pk", "next_fire_at")[:limit])
    return list(due)
