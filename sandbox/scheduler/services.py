"""Creating, changing and deleting schedules, and firing them: the one path for the AWS API and the console alike.

Every refusal is a ScheduleError with AWS's code and words (for `aws scheduler ...`) and a plain sentence (for the
console). Firing: one periodic dispatcher (`schedules_dispatch`, run by Celery beat every few seconds) claims each due
occurrence with a conditional UPDATE, so two dispatchers never fire one occurrence twice, moves the schedule on to its
next occurrence after now (so an outage fires a schedule once, not once per missed occurrence) and queues a task per
occurrence (`schedule_fire`), which invokes the target at most once for that occurrence.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.timezone import now as utc_now
from kombu.exceptions import OperationalError as KombuOperationalError

from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.identity import arn_check
from sandbox.awsapi.models import AwsAccount

from . import selectors, targets
from .errors import ScheduleError, group_not_found
from .expressions import At, Cron, ExpressionError, Rate, TimezoneError, expression_parse, timezone_parse
from .models import DEFAULT_GROUP, Schedule

logger = logging.getLogger(__name__)

# Scheduler's model (botocore scheduler-2021-06-30) and documentation.
NAME_PATTERN = "[0-9a-zA-Z-_.]+"
ROLE_ARN_PATTERN = r"arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]+"
INPUT_MAX_BYTES = 256 * 1024  # "The maximum size of the Input field is 256 KB" (CreateSchedule's Target.Input)
START_DATE_GRACE = timedelta(minutes=5)
# Sandcloud invokes Lambda targets only: the templated target `arn:aws:lambda:<region>:<account>:function:<name>`,
# optionally with a version or alias, as Lambda's own model spells function names.
LAMBDA_TARGET = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9-_]{1,64}"
                           r"(:(\$LATEST|[a-zA-Z0-9-_]{1,128}))?")
# The role a schedule made on the console names; Sandcloud has no IAM, so it is recorded and shown, never assumed.
CONSOLE_ROLE_NAME = "sandcloud-scheduler"
# AWS: "If you do not specify anything for this field, EventBridge Scheduler delivers a default notification"; what
# that is for Lambda is not documented, so a function without Input receives an empty JSON object.
DEFAULT_PAYLOAD = b"{}"
DISPATCH_BATCH = 500


# --- settings -----------------------------------------------------------------------------------------------------

def schedules_per_account() -> int:
    return settings.SANDCLOUD_SCHEDULES_PER_ACCOUNT


def minimum_interval() -> timedelta:
    """How often Sandcloud fires one schedule at most (AWS allows once a minute; an operator may allow less)."""
    return timedelta(seconds=max(60, settings.SANDCLOUD_SCHEDULE_MIN_INTERVAL_SECONDS))


def _interval_words(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


# --- validation, in AWS's words -----------------------------------------------------------------------------------

def _invalid(problem: str, plain: str) -> ScheduleError:
    """AWS's `1 validation error detected: ...` for a member the API's parser would also have refused; the console
    reaches the services without that parser, so they check again."""
    return ScheduleError("ValidationException", f"1 validation error detected: {problem}", plain=plain)


def _length_check(value: str, member: str, low: int, high: int, plain: str) -> None:
    if len(value) < low:
        raise _invalid(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must have length greater "
                       f"than or equal to {low}", plain)
    if len(value) > high:
        raise _invalid(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must have length less "
                       f"than or equal to {high}", plain)


def _pattern_check(value: str, member: str, pattern: str, plain: str) -> None:
    if re.fullmatch(pattern, value) is None:
        raise _invalid(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular "
                       f"expression pattern: {pattern}", plain)


def _enum_check(value: str, member: str, choices: type, plain: str) -> None:
    if value not in choices.values:
        raise _invalid(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value "
                       f"set: [{', '.join(choices.values)}]", plain)


def _name_check(name: str, member: str = "name") -> None:
    plain = "A name has 1 to 64 letters, digits, hyphens, underscores or dots."
    _length_check(name, member, 1, 64, plain)
    _pattern_check(name, member, NAME_PATTERN, plain)


def _expression_parse(expression: str) -> Rate | Cron | At:
    try:
        parsed = expression_parse(expression)
    except ExpressionError as error:
        raise ScheduleError("ValidationException", error.message, plain=error.reason) from None
    bound = minimum_interval()
    if isinstance(parsed, Rate):
        shortest = parsed.interval
    elif isinstance(parsed, Cron):
        shortest = parsed.shortest_gap()
    else:
        shortest = None  # at() fires once
    if shortest is not None and shortest < bound:
        # AWS accepts it; Sandcloud bounds how often a learner's schedule fires, and says so in AWS's message form.
        words = _interval_words(bound)
        raise ScheduleError(
            "ValidationException",
            f"Invalid Schedule Expression {expression}. Sandcloud fires a schedule at most once every {words}.",
            plain=f"Sandcloud fires a schedule at most once every {words}: choose a longer interval.")
    return parsed


def _timezone_parse(name: str) -> ZoneInfo:
    try:
        return timezone_parse(name)
    except TimezoneError as error:
        # The wording is ours: AWS's answer to an unknown time zone is not in any source we could check.
        raise ScheduleError("ValidationException", f"Invalid ScheduleExpressionTimezone {name}.",
                            plain=str(error)) from None


def _target_check(*, account: AwsAccount, target_arn: str) -> None:
    _length_check(target_arn, "target.arn", 1, 1600, "A target is a Lambda function's ARN.")
    try:
        arn_check(account=account, arn=target_arn, action="lambda:InvokeFunction")
    except AwsError as error:
        raise ScheduleError(error.code, error.message,
                            plain="That function belongs to another AWS account: a schedule can only invoke your "
                                  "own functions.") from None
    if LAMBDA_TARGET.fullmatch(target_arn) is None:
        raise ScheduleError(
            "ValidationException",
            f"Invalid target {target_arn}. Sandcloud fires only Lambda targets: "
            f"arn:aws:lambda:<region>:<account-id>:function:<name>[:<version or alias>].",
            plain="Sandcloud's schedules fire Lambda functions only: choose a function.")


def _role_check(*, account: AwsAccount, role_arn: str) -> None:
    plain = "The role is an IAM role ARN of your account, arn:aws:iam::<account-id>:role/<name>."
    _length_check(role_arn, "target.roleArn", 1, 1600, plain)
    _pattern_check(role_arn, "target.roleArn", ROLE_ARN_PATTERN, plain)
    try:
        arn_check(account=account, arn=role_arn, action="iam:PassRole")
    except AwsError as error:
        raise ScheduleError(error.code, error.message,
                            plain="That role belongs to another AWS account: use a role of your own.") from None


def _input_check(target_input: str) -> None:
    size = len(target_input.encode())
    if size > INPUT_MAX_BYTES:
        raise _invalid(f"Value at 'target.input' failed to satisfy constraint: Member must have length less than or "
                       f"equal to {INPUT_MAX_BYTES}",
                       f"The input is {size:,} bytes; a schedule's input is at most 256 KB.")
    if target_input:
        try:
            json.loads(target_input)
        except ValueError:
            # AWS: for a templated Lambda target "the input must be a well-formed JSON". The wording is ours.
            raise ScheduleError("ValidationException", "Invalid input: the input to a Lambda target must be "
                                                       "well-formed JSON.",
                                plain="The input must be JSON, e.g. {\"task\": \"report\"}.") from None


@dataclass
class _Checked:
    """What a create or an update will store, checked, with the parsed expression and time zone."""

    fields: dict
    parsed: Rate | Cron | At
    zone: ZoneInfo


def _check(*, account: AwsAccount, name: str, group_name: str, expression: str, timezone_name: str,
           target_arn: str, role_arn: str, target_input: str, state: str, description: str,
           start_date: datetime | None, end_date: datetime | None, action_after_completion: str,
           flexible_time_window_mode: str, flexible_time_window_minutes: int | None,
           retry_maximum_event_age_seconds: int, retry_maximum_attempts: int, now: datetime) -> _Checked:
    _name_check(name)
    _name_check(group_name, "groupName")
    if group_name != DEFAULT_GROUP:
        raise group_not_found(group_name)
    _length_check(expression, "scheduleExpression", 1, 256, "A schedule expression has 1 to 256 characters.")
    _length_check(description, "description", 0, 512, "A description has at most 512 characters.")
    _enum_check(state, "state", Schedule.State, "A schedule is ENABLED or DISABLED.")
    _enum_check(action_after_completion, "actionAfterCompletion", Schedule.ActionAfterCompletion,
                "After its last firing a schedule is kept (NONE) or deleted (DELETE).")
    _enum_check(flexible_time_window_mode, "flexibleTimeWindow.mode", Schedule.FlexibleTimeWindowMode,
                "The flexible time window is OFF or FLEXIBLE.")
    if flexible_time_window_mode == Schedule.FlexibleTimeWindowMode.FLEXIBLE:
        if flexible_time_window_minutes is None or not 1 <= flexible_time_window_minutes <= 1440:
            # The wording is ours.
            raise ScheduleError("ValidationException", "MaximumWindowInMinutes (1-1440) is required when "
                                                       "FlexibleTimeWindow Mode is FLEXIBLE.",
                                plain="A flexible window needs its length, 1 to 1440 minutes.")
    else:
        flexible_time_window_minutes = None
    parsed = _expression_parse(expression)
    zone = _timezone_parse(timezone_name)
    _target_check(account=account, target_arn=target_arn)
    _role_check(account=account, role_arn=role_arn)
    _input_check(target_input)
    if parsed.recurring:
        if start_date is not None and start_date < now - START_DATE_GRACE:
            # moto's wording for AWS's rule (not confirmed against AWS).
            raise ScheduleError("ValidationException", "The StartDate you specify cannot be earlier than 5 minutes "
                                                       "ago.",
                                plain="The start date cannot be in the past.")
        if start_date is not None and end_date is not None and end_date <= start_date:
            raise ScheduleError("ValidationException", "The EndDate you specify must be after the StartDate.",
                                plain="The end date must come after the start date.")
    else:
        start_date = end_date = None  # AWS applies them to recurring schedules only
    fields = {
        "group_name": group_name, "expression": expression, "timezone": timezone_name, "state": state,
        "description": description, "start_date": start_date, "end_date": end_date,
        "action_after_completion": action_after_completion,
        "flexible_time_window_mode": flexible_time_window_mode,
        "flexible_time_window_minutes": flexible_time_window_minutes,
        "target_arn": target_arn, "target_role_arn": role_arn, "target_input": target_input,
        "retry_maximum_event_age_seconds": retry_maximum_event_age_seconds,
        "retry_maximum_attempts": retry_maximum_attempts,
    }
    return _Checked(fields=fields, parsed=parsed, zone=zone)


# --- when it fires ------------------------------------------------------------------------------------------------

def _next_fire(*, parsed: Rate | Cron | At, zone: ZoneInfo, start_date: datetime | None,
               end_date: datetime | None, at_or_after: datetime, anchor: datetime) -> datetime | None:
    """The schedule's first occurrence at or after `at_or_after` and inside its start and end dates; `anchor` is an
    instant a rate fires at (its start, or its last occurrence)."""
    if isinstance(parsed, At):
        return parsed.next_at_or_after(at_or_after, timezone=zone)
    if start_date is not None and start_date > at_or_after:
        at_or_after = start_date
    fires = parsed.next_at_or_after(at_or_after, timezone=zone, anchor=anchor)
    if fires is not None and end_date is not None and fires > end_date:
        return None
    return fires


def _first_fire(checked: _Checked, *, now: datetime) -> datetime | None:
    fields = checked.fields
    if fields["state"] != Schedule.State.ENABLED:
        return None
    # A rate starts at its StartDate, else at once ("your schedule starts invoking the target immediately").
    return _next_fire(parsed=checked.parsed, zone=checked.zone, start_date=fields["start_date"],
                      end_date=fields["end_date"], at_or_after=now, anchor=fields["start_date"] or now)


def schedule_next_fire(*, schedule: Schedule, after_occurrence: datetime, now: datetime) -> datetime | None:
    """The occurrence after `after_occurrence` the dispatcher fires next: the first one after now (however many an
    outage missed, the firing of `after_occurrence` stands for them all) and at least the minimum interval after
    the last."""
    parsed = expression_parse(schedule.expression)
    earliest = max(now + timedelta(microseconds=1), after_occurrence + minimum_interval())
    return _next_fire(parsed=parsed, zone=timezone_parse(schedule.timezone), start_date=schedule.start_date,
                      end_date=schedule.end_date, at_or_after=earliest, anchor=after_occurrence)


# --- create, update, delete ---------------------------------------------------------------------------------------

def console_role_arn(*, account: AwsAccount) -> str:
    return f"arn:aws:iam::{account.account_id}:role/{CONSOLE_ROLE_NAME}"


def schedule_create(*, account: AwsAccount, name: str, expression: str, target_arn: str, role_arn: str = "",
                    timezone: str = "UTC", target_input: str = "", state: str = Schedule.State.ENABLED,
                    description: str = "", group_name: str = DEFAULT_GROUP, start_date: datetime | None = None,
                    end_date: datetime | None = None,
                    action_after_completion: str = Schedule.ActionAfterCompletion.NONE,
                    flexible_time_window_mode: str = Schedule.FlexibleTimeWindowMode.OFF,
                    flexible_time_window_minutes: int | None = None, retry_maximum_event_age_seconds: int = 86400,
                    retry_maximum_attempts: int = 185, region: str = "", client_token: str = "",
                    now: datetime | None = None) -> Schedule:
    """A new schedule in the account; it fires from its first occurrence on if ENABLED.

    `role_arn` empty (the console) names the account's `sandcloud-scheduler` role. A retried CreateSchedule with the
    same `client_token` returns the schedule it made. Raises ScheduleError: ValidationException, ConflictException
    (the name is taken), ServiceQuotaExceededException (the account has SANDCLOUD_SCHEDULES_PER_ACCOUNT already),
    AccessDeniedException (a target or role of another account).
    """
    now = now or utc_now()
    role_arn = role_arn or console_role_arn(account=account)
    checked = _check(account=account, name=name, group_name=group_name, expression=expression,
                     timezone_name=timezone, target_arn=target_arn, role_arn=role_arn,
                     target_input=target_input, state=state, description=description, start_date=start_date,
                     end_date=end_date, action_after_completion=action_after_completion,
                     flexible_time_window_mode=flexible_time_window_mode,
                     flexible_time_window_minutes=flexible_time_window_minutes,
                     retry_maximum_event_age_seconds=retry_maximum_event_age_seconds,
                     retry_maximum_attempts=retry_maximum_attempts, now=now)
    with transaction.atomic():
        # The lock makes the count and the insert one step, so two requests at once cannot pass the cap together.
        AwsAccount.objects.select_for_update().filter(pk=account.pk).first()
        existing = Schedule.objects.filter(account=account, group_name=group_name, name=name).first()
        if existing is not None:
            if client_token and existing.client_token == client_token:
                existing.account = account
                return existing
            # moto's wording (not confirmed against AWS).
            raise ScheduleError("ConflictException", f"Schedule {name} already exists.",
                                plain=f"You already have a schedule called {name}: choose another name.")
        cap = schedules_per_account()
        if Schedule.objects.filter(account=account).count() >= cap:
            raise ScheduleError("ServiceQuotaExceededException",
                                f"You have reached the quota of {cap} schedules per account that Sandcloud allows.",
                                plain=f"You have {cap} schedules, as many as Sandcloud allows: delete one first.")
        try:
            with transaction.atomic():
                schedule = Schedule.objects.create(
                    account=account, name=name, region=region or settings.SANDCLOUD_AWS_REGION,
                    client_token=client_token, next_fire_at=_first_fire(checked, now=now), created=now,
                    modified=now, last_result=_never_fires_note(checked, now=now), **checked.fields)
        except IntegrityError:
            raise ScheduleError("ConflictException", f"Schedule {name} already exists.",
                                plain=f"You already have a schedule called {name}: choose another name.") from None
    logger.info("schedule %s created in AWS account %s", schedule.arn, account.account_id)
    return schedule


def _never_fires_note(checked: _Checked, *, now: datetime) -> str:
    """Why an enabled schedule will never fire, for the console (AWS accepts such schedules without a word)."""
    if checked.fields["state"] == Schedule.State.ENABLED and _first_fire(checked, now=now) is None:
        if isinstance(checked.parsed, At):
            return "This one-time schedule's time has passed (or the clocks skip it): it will not fire."
        return "This schedule has no occurrence left before its end date (or its years): it will not fire."
    return ""


def schedule_update(*, account: AwsAccount, name: str, expression: str, target_arn: str, role_arn: str = "",
                    timezone: str = "UTC", target_input: str = "", state: str = Schedule.State.ENABLED,
                    description: str = "", group_name: str = DEFAULT_GROUP, start_date: datetime | None = None,
                    end_date: datetime | None = None,
                    action_after_completion: str = Schedule.ActionAfterCompletion.NONE,
                    flexible_time_window_mode: str = Schedule.FlexibleTimeWindowMode.OFF,
                    flexible_time_window_minutes: int | None = None, retry_maximum_event_age_seconds: int = 86400,
                    retry_maximum_attempts: int = 185, now: datetime | None = None) -> Schedule:
    """Replaces every setting of the schedule, as AWS's UpdateSchedule does (what is not given returns to its
    default), and starts it afresh from now. Raises ScheduleError as schedule_create does, and
    ResourceNotFoundException."""
    now = now or utc_now()
    schedule = selectors.schedule_get(account=account, name=name, group_name=group_name)
    role_arn = role_arn or console_role_arn(account=account)
    checked = _check(account=account, name=name, group_name=group_name, expression=expression,
                     timezone_name=timezone, target_arn=target_arn, role_arn=role_arn,
                     target_input=target_input, state=state, description=description, start_date=start_date,
                     end_date=end_date, action_after_completion=action_after_completion,
                     flexible_time_window_mode=flexible_time_window_mode,
                     flexible_time_window_minutes=flexible_time_window_minutes,
                     retry_maximum_event_age_seconds=retry_maximum_event_age_seconds,
                     retry_maximum_attempts=retry_maximum_attempts, now=now)
    # The dispatcher's claim compares next_fire_at, so an occurrence it read before this update is not fired.
    changes = {**checked.fields, "next_fire_at": _first_fire(checked, now=now), "modified": now,
               "last_result": _never_fires_note(checked, now=now) or schedule.last_result}
    Schedule.objects.filter(pk=schedule.pk).update(**changes)
    schedule.refresh_from_db()
    logger.info("schedule %s updated", schedule.arn)
    return schedule


def schedule_delete(*, account: AwsAccount, name: str, group_name: str | None = None) -> None:
    """Deletes the schedule; a firing already queued for it finds nothing and does nothing. Raises ScheduleError
    (ResourceNotFoundException)."""
    schedule = selectors.schedule_get(account=account, name=name, group_name=group_name)
    schedule.delete()
    logger.info("schedule %s/%s deleted from AWS account %s", schedule.group_name, name, account.account_id)


# --- firing -------------------------------------------------------------------------------------------------------

def schedules_dispatch(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> int:
    """Claims every due occurrence and queues its firing; returns how many it claimed. Safe to run in several
    processes at once: each occurrence is claimed by one conditional UPDATE, which only one of them wins."""
    now = now or utc_now()
    claimed = 0
    for schedule_id, occurrence in selectors.schedules_due(now=now, limit=limit):
        if occurrence_claim(schedule_id=schedule_id, occurrence=occurrence, now=now):
            claimed += 1
    return claimed


def occurrence_claim(*, schedule_id: int, occurrence: datetime, now: datetime) -> bool:
    """Moves the schedule from `occurrence` on to its next occurrence and queues the firing of `occurrence`, if no
    one else has (False then). After its last occurrence a schedule is disabled (ActionAfterCompletion NONE) or,
    once that firing has invoked its target, deleted (DELETE)."""
    schedule = Schedule.objects.filter(pk=schedule_id, state=Schedule.State.ENABLED,
                                       next_fire_at=occurrence).first()
    if schedule is None:
        return False
    try:
        following = schedule_next_fire(schedule=schedule, after_occurrence=occurrence, now=now)
    except (ExpressionError, TimezoneError):
        logger.exception("schedule %s holds an expression or time zone it should not", schedule_id)
        following = None
    changes = {"next_fire_at": following}
    if following is None and schedule.action_after_completion == Schedule.ActionAfterCompletion.NONE:
        changes["state"] = Schedule.State.DISABLED
    with transaction.atomic():
        won = Schedule.objects.filter(pk=schedule_id, state=Schedule.State.ENABLED,
                                      next_fire_at=occurrence).update(**changes)
        if won:
            transaction.on_commit(partial(_fire_queue, schedule_id=schedule_id, occurrence=occurrence))
    return bool(won)


def _fire_queue(*, schedule_id: int, occurrence: datetime) -> None:
    from .tasks import schedule_fire_task

    try:
        schedule_fire_task.delay(schedule_id, occurrence.isoformat())
    except (KombuOperationalError, OSError) as error:
        # The occurrence is claimed and cannot be queued: it is lost, and the learner is told why.
        logger.error("could not queue the firing of schedule %s at %s: %s", schedule_id, occurrence, error)
        Schedule.objects.filter(pk=schedule_id).update(
            last_result="Sandcloud could not queue this firing (its task queue is unavailable); the next one will "
                        "be tried as usual.")


def schedule_fire(*, schedule_id: int, occurrence: datetime, now: datetime | None = None) -> str | None:
    """Invokes the schedule's target for `occurrence`, at most once however often this is called for it, and
    records how that went. Returns the result, or None when the occurrence was already fired or the schedule is
    gone."""
    now = now or utc_now()
    # Occurrences of one schedule are claimed in order and at least a minute apart, so "not later than the last
    # one fired" means "already fired" (a redelivered task, a duplicate message).
    first_time = Schedule.objects.filter(pk=schedule_id).filter(
        Q(last_occurrence__isnull=True) | Q(last_occurrence__lt=occurrence)
    ).update(last_occurrence=occurrence, last_fired_at=now)
    if not first_time:
        return None
    schedule = Schedule.objects.select_related("account__user").filter(pk=schedule_id).first()
    if schedule is None:
        return None
    payload = schedule.target_input.encode() if schedule.target_input else DEFAULT_PAYLOAD
    result = targets.target_invoke(account=schedule.account, arn=schedule.target_arn, payload=payload)
    Schedule.objects.filter(pk=schedule_id).update(last_result=result[:1024])
    logger.info("schedule %s fired for %s: %s", schedule.arn, occurrence.isoformat(), result)
    completed = schedule.next_fire_at is None
    if completed and schedule.action_after_completion == Schedule.ActionAfterCompletion.DELETE:
        Schedule.objects.filter(pk=schedule_id, next_fire_at__isnull=True).delete()
        logger.info("schedule %s completed and was deleted, as its ActionAfterCompletion says", schedule.arn)
    return result
