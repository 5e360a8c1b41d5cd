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
