"""A schedule as EventBridge Scheduler keeps it, plus when Sandcloud fires it next and what happened the last time."""
from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from sandbox.awsapi.models import AwsAccount

DEFAULT_GROUP = "default"


class Schedule(models.Model):
    """One schedule in a learner's account: an expression, a time zone and one target (a Lambda function)."""

    class State(models.TextChoices):
        ENABLED = "ENABLED"
        DISABLED = "DISABLED"

    class ActionAfterCompletion(models.TextChoices):
        NONE = "NONE"
        DELETE = "DELETE"

    class FlexibleTimeWindowMode(models.TextChoices):
        OFF = "OFF"
        FLEXIBLE = "FLEXIBLE"

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="schedules")
    region = models.CharField(max_length=32)  # the region the schedule was created in, for its ARN
    group_name = models.CharField(max_length=64, default=DEFAULT_GROUP)
    name = models.CharField(max_length=64)
    expression = models.CharField(max_length=256)
    timezone = models.CharField(max_length=50, default="UTC")
    state = models.CharField(max_length=8, choices=State, default=State.ENABLED)
    description = models.CharField(max_length=512, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    action_after_completion = models.CharField(max_length=6, choices=ActionAfterCompletion,
                                               default=ActionAfterCompletion.NONE)
    # Sandcloud fires every schedule at its nominal time, which is inside any flexible window too.
    flexible_time_window_mode = models.CharField(max_length=8, choices=FlexibleTimeWindowMode,
                                                 default=FlexibleTimeWindowMode.OFF)
    flexible_time_window_minutes = models.PositiveIntegerField(null=True, blank=True)
    target_arn = models.CharField(max_length=1600)
    target_role_arn = models.CharField(max_length=1600)
    target_input = models.TextField(blank=True)  # at most 256 KB, as AWS allows (services.py checks)
    # Kept and reported as AWS does (its defaults: 24 hours, 185 attempts); Sandcloud does not retry a firing.
    retry_maximum_event_age_seconds = models.PositiveIntegerField(default=86400)
    retry_maximum_attempts = models.PositiveIntegerField(default=185)
    # The ClientToken of the CreateSchedule that made it, so that a retried request gets its answer again.
    client_token = models.CharField(max_length=64, blank=True)

    # When the dispatcher fires it next: None once it never will (disabled, completed, past its end date).
    next_fire_at = models.DateTimeField(null=True, blank=True)
    # The occurrence (the instant it was due) last handed to a target, so a redelivered firing task invokes nothing.
    last_occurrence = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=1024, blank=True)  # "Invoked", or why the target was not invoked

    created = models.DateTimeField(default=now)
    modified = models.DateTimeField(default=now)

    class Meta:
        ordering = ["group_name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "group_name", "name"], name="scheduler_schedule_unique_name"),
            models.CheckConstraint(condition=Q(state="ENABLED") | Q(state="DISABLED"),
                                   name="scheduler_schedule_state_valid"),
        ]
        indexes = [models.Index(fields=["state", "next_fire_at"], name="scheduler_due_idx")]

    def __str__(self) -> str:
        return f"{self.group_name}/{self.name}"

    @property
    def arn(self) -> str:
        return f"arn:aws:scheduler:{self.region}:{self.account.account_id}:schedule/{self.group_name}/{self.name}"

    @property
    def is_enabled(self) -> bool:
        return self.state == self.State.ENABLED
