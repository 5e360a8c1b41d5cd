"""What Sandcloud keeps about an account beyond Django's user: whether its password is a one-time one."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class PasswordChangeRequired(models.Model):
    """The account's password was made by an instructor (a roster or a reset): its owner must choose their own at
    the next sign-in before anything else (accounts/middleware.py)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="password_change_required")
    since = models.DateTimeField(default=timezone.now)
