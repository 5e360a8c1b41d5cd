"""A learner's AWS identity: one account with a 12-digit id, and the access keys that sign requests to it."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AwsAccount(models.Model):
    """The learner's own AWS account: every resource they create in an imitated service belongs to it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="aws_account")
    # Random, never sequential, never starting with 0 (identity.py draws it), so an id tells nothing about other
    # learners and reads like a real one in an ARN.
    account_id = models.CharField(max_length=12, unique=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(account_id__regex=r"^[1-9][0-9]{11}$"),
                                   name="awsapi_account_id_twelve_digits"),
        ]

    def __str__(self) -> str:
        return self.account_id

    @property
    def user_arn(self) -> str:
        """The IAM user the learner's keys belong to, as AWS names the caller in errors and GetCallerIdentity."""
        return f"arn:aws:iam::{self.account_id}:user/{self.user.get_username()}"


class AccessKey(models.Model):
    """An access key pair as IAM issues it. The secret is kept only encrypted (identity.py holds the cipher)."""

    class Status(models.TextChoices):
        ACTIVE = "Active"
        INACTIVE = "Inactive"

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="access_keys")
    access_key_id = models.CharField(max_length=20, unique=True)
    secret_encrypted = models.CharField(max_length=255)  # a Fernet token; never the secret itself
    status = models.CharField(max_length=8, choices=Status, default=Status.ACTIVE)
    created = models.DateTimeField(default=timezone.now)
    # What IAM's GetAccessKeyLastUsed reports; written at most once a minute per key (sigv4.py says why).
    last_used = models.DateTimeField(null=True, blank=True)
    last_used_service = models.CharField(max_length=64, blank=True)
    last_used_region = models.CharField(max_length=32, blank=True)
    # Revoked keys stay, Inactive, so the page can still say when a key stopped working; they never sign again.
    revoked = models.DateTimeField(null=True, blank=True)
    # Temporary credentials (ASIA… ids, as STS issues them), e.g. a Lambda execution environment's: they sign only
    # with their session token (kept as its SHA-256) and only until they expire. Never listed on the keys page.
    session_token_hash = models.CharField(max_length=64, blank=True)
    expires = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(status="Active", revoked__isnull=True) | Q(status="Inactive"),
                                   name="awsapi_revoked_key_inactive"),
        ]

    def __str__(self) -> str:
        return self.access_key_id  # never the secret

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
