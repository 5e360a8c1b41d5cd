"""Sandboxes and warm-pool containers as rows; the containers themselves live on the Docker Engine."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from .states import ACTIVE, FINAL, State


class Runtime(models.TextChoices):
    RUNC = "runc", "Standard (runc)"
    RUNSC = "runsc", "Strong isolation (gVisor)"


class Sandbox(models.Model):
    State = State

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sandboxes")
    lab_slug = models.SlugField(max_length=100, blank=True)
    step_slug = models.SlugField(max_length=100, blank=True)
    image = models.CharField(max_length=200)
    runtime = models.CharField(max_length=10, choices=Runtime.choices, default=Runtime.RUNC)
    memory_mb = models.PositiveIntegerField()
    cpus = models.FloatField()
    pids_limit = models.PositiveIntegerField()
    capabilities = models.JSONField(default=list, blank=True)
    uid = models.PositiveIntegerField(help_text="The Unix user id the learner's processes run as.")

    state = models.CharField(max_length=20, choices=State.choices, default=State.REQUESTED, db_index=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    container_id = models.CharField(max_length=80, blank=True, db_index=True)
    from_warm_pool = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    last_active_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "state"])]
        constraints = [
            # The uid is what keeps one learner's process limit away from another's: never two live sandboxes on one.
            models.UniqueConstraint(fields=["uid"], condition=models.Q(state__in=sorted(ACTIVE)),
                                    name="sandbox_uid_unique_while_active"),
        ]

    def __str__(self) -> str:
        return f"sandbox {self.pk} of {self.owner} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE

    @property
    def is_final(self) -> bool:
        return self.state in FINAL

    @property
    def seconds_left(self) -> int:
        return max(0, int((self.expires_at - timezone.now()).total_seconds()))


class WarmContainer(models.Model):
    """A pre-started workstation with default limits, waiting to be claimed by the next matching request."""

    # Several installs (or test runs) may share one database and engine; each claims only its own containers.
    instance = models.CharField(max_length=60, db_index=True, default="default")
    image = models.CharField(max_length=200)
    runtime = models.CharField(max_length=10, choices=Runtime.choices, default=Runtime.RUNC)
    container_id = models.CharField(max_length=80, unique=True)
    uid = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]


class TerminalRecording(models.Model):
    """One terminal session of a sandbox's owner, kept as an asciicast v2 file for replay next to grading results."""

    sandbox = models.ForeignKey(Sandbox, on_delete=models.CASCADE, related_name="recordings")
    path = models.CharField(max_length=300)
    width = models.PositiveIntegerField(default=120)
    height = models.PositiveIntegerField(default=32)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at"]
