"""Keeps the "choose a new password" flag in step with sign-ins and password changes."""
from allauth.account.signals import password_changed, password_reset
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from .middleware import SESSION_KEY
from .models import PasswordChangeRequired


@receiver(user_logged_in, dispatch_uid="accounts-flag-on-sign-in")
def _signed_in(sender, request, user, **kwargs) -> None:
    if request is not None and PasswordChangeRequired.objects.filter(user=user).exists():
        request.session[SESSION_KEY] = True


@receiver(password_changed, dispatch_uid="accounts-flag-cleared-on-change")
@receiver(password_reset, dispatch_uid="accounts-flag-cleared-on-reset")
def _password_chosen(sender, request, user, **kwargs) -> None:
    PasswordChangeRequired.objects.filter(user=user).delete()
    if request is not None:
        request.session.pop(SESSION_KEY, None)
