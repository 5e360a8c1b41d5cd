"""A cohort is an instructor's class; learners join it with its invite code."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class Cohort(models.Model):
    name = models.CharField(max_length=120)
    instructor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cohorts_taught")
    invite_code = models.CharField(max_length=12, unique=True)
    # A closed cohort keeps its learners and its code but takes nobody new, by code or by sign-up.
    is_closed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="memberships")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cohort_memberships")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["learner__username"]
        constraints = [models.UniqueConstraint(fields=["cohort", "learner"], name="cohorts_one_membership")]


class ClassSession(models.Model):
    """An instructor's "everyone, open this lab now": a cohort, a lab and a time, for which the platform starts the
    lab's sandboxes ahead (a warm pool reservation, sandbox/pools) so that each learner's start is instant."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="class_sessions")
    lab = models.ForeignKey("labs.Lab", on_delete=models.CASCADE, related_name="class_sessions")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    expected_learners = models.PositiveIntegerField()
    reservation = models.OneToOneField("sandbox.PoolReservation", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="class_session")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["cohort", "starts_at"])]

    def __str__(self) -> str:
        return f"{self.lab.title} for {self.cohort.name} at {self.starts_at:%Y-%m-%d %H:%M}"
