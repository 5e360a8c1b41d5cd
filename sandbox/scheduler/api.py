"""EventBridge Scheduler's AWS API (botocore service `scheduler`, rest-json), the subset Sandcloud serves: one method
per action, each a thin reading of AWS's members into the services and of the schedule back into AWS's shape."""
from __future__ import annotations

from datetime import datetime

from sandbox.awsapi import pagination
from sandbox.awsapi.providers import RequestContext

from . import selectors, services
from .errors import ScheduleError, group_not_found
from .models import DEFAULT_GROUP, Schedule

LIST_DEFAULT_PAGE = 100  # ListSchedules' MaxResults allows 1-100


def _unsupported(member: str) -> ScheduleError:
    return ScheduleError("ValidationException", f"Sandcloud does not support {member} yet.",
                         plain=f"Sandcloud does not support {member} yet: leave it out.")


def _settings(*, Name: str, ScheduleExpression: str, Target: dict, FlexibleTimeWindow: dict,
              GroupName: str | None = None, StartDate: datetime | None = None, EndDate: datetime | None = None,
              Description: str | None = None, ScheduleExpressionTimezone: str | None = None,
              State: str | None = None, KmsKeyArn: str | None = None,
              ActionAfterCompletion: str | None = None) -> dict:
    """CreateSchedule's and UpdateSchedule's members as the services' keyword arguments."""
    if KmsKeyArn:
        raise _unsupported("KmsKeyArn")
    if Target.get("DeadLetterConfig"):
        raise _unsupported("Target.DeadLetterConfig")
    retry = Target.get("RetryPolicy") or {}
    return {
        "name": Name, "expression": ScheduleExpression, "group_name": GroupName or DEFAULT_GROUP,
        "target_arn": Target["Arn"], "role_arn": Target["RoleArn"], "target_input": Target.get("Input") or "",
        "retry_maximum_event_age_seconds": retry.get("MaximumEventAgeInSeconds", 86400),
        "retry_maximum_attempts": retry.get("MaximumRetryAttempts", 185),
        "flexible_time_window_mode": FlexibleTimeWindow["Mode"],
        "flexible_time_window_minutes": FlexibleTimeWindow.get("MaximumWindowInMinutes"),
        "start_date": StartDate, "end_date": EndDate, "description": Description or "",
        "timezone": ScheduleExpressionTimezone or "UTC", "state": State or Schedule.State.ENABLED,
        "action_after_completion": ActionAfterCompletion or Schedule.ActionAfterCompletion.NONE,
    }


def _described(schedule: Schedule) -> dict:
    """GetScheduleOutput: members AWS leaves out when unset are left out."""
    target = {"Arn": schedule.target_arn, "RoleArn": schedule.target_role_arn,
              "RetryPolicy": {"MaximumEventAgeInSeconds": schedule.retry_maximum_event_age_seconds,
                              "MaximumRetryAttempts": schedule.retry_maximum_attempts}}
    if schedule.target_input:
        target["Input"] = schedule.target_input
    window = {"Mode": schedule.flexible_time_window_mode}
    if schedule.flexible_time_window_minutes is not None:
        window["MaximumWindowInMinutes"] = schedule.flexible_time_window_minutes
    return {
        "Arn": schedule.arn, "GroupName": schedule.group_name, "Name": schedule.name,
        "ScheduleExpression": schedule.expression, "ScheduleExpressionTimezone": schedule.timezone,
        "State": schedule.state, "Description": schedule.description or None,
        "StartDate": schedule.start_date, "EndDate": schedule.end_date,
        "CreationDate": schedule.created, "LastModificationDate": schedule.modified,
        "Target": target, "FlexibleTimeWindow": window, "ActionAfterCompletion": schedule.action_after_completion,
    }


def _summary(schedule: Schedule) -> dict:
    return {"Arn": schedule.arn, "Name": schedule.name, "GroupName": schedule.group_name, "State": schedule.state,
            "CreationDate": schedule.created, "LastModificationDate": schedule.modified,
            "Target": {"Arn": schedule.target_arn}}


class SchedulerApi:
    """The provider registered for `scheduler` (apps.py)."""

    def create_schedule(self, context: RequestContext, *, ClientToken: str | None = None, **members) -> dict:
        schedule = services.schedule_create(account=context.account, region=context.region,
                                            client_token=ClientToken or "", **_settings(**members))
        return {"ScheduleArn": schedule.arn}

    def get_schedule(self, context: RequestContext, *, Name: str, GroupName: str | None = None) -> dict:
        return _described(selectors.schedule_get(account=context.account, name=Name, group_name=GroupName))

    def list_schedules(self, context: RequestContext, *, GroupName: str | None = None,
                       NamePrefix: str | None = None, State: str | None = None, NextToken: str | None = None,
                       MaxResults: int | None = None) -> dict:
        if GroupName and GroupName != DEFAULT_GROUP:
            raise group_not_found(GroupName)
        schedules = selectors.schedules_for(account=context.account)
        if NamePrefix:
            schedules = schedules.filter(name__startswith=NamePrefix)
        if State:
            schedules = schedules.filter(state=State)
        page = pagination.paginate(
            list(schedules), token=NextToken, limit=pagination.page_size(MaxResults, default=LIST_DEFAULT_PAGE),
            scope=f"scheduler:ListSchedules:{context.account_id}:{GroupName or ''}:{NamePrefix or ''}:{State or ''}",
            key=lambda schedule: f"{schedule.group_name}/{schedule.name}",
            invalid_token=ScheduleError("ValidationException", "The provided pagination token is invalid."))
        out = {"Schedules": [_summary(schedule) for schedule in page.items]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    def update_schedule(self, context: RequestContext, *, ClientToken: str | None = None, **members) -> dict:
        schedule = services.schedule_update(account=context.account, **_settings(**members))
        return {"ScheduleArn": schedule.arn}

    def delete_schedule(self, context: RequestContext, *, Name: str, GroupName: str | None = None,
                        ClientToken: str | None = None) -> dict:
        services.schedule_delete(account=context.account, name=Name, group_name=GroupName)
        return {}
