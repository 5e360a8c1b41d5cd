"""Changes to a person's account that reach beyond allauth: deleting it (sandboxes, recordings, identity)."""
from __future__ import annotations

import secrets

from allauth.account.models import EmailAddress
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from sandbox import services as sandbox_services
from sandbox.awsapi.identity import aws_account_close
from sandbox.models import Sandbox, TerminalRecording
from sandbox.states import FINAL

DELETED_PREFIX = "deleted-learner-"


class AccountError(Exception):
    """A request about an account that cannot happen; str() is the message for the person."""


def account_delete(*, user: AbstractBaseUser, password: str) -> None:
    """Removes a learner: their sandboxes are stopped (the worker removes the containers and their network), their
    terminal recordings deleted (the files go with the rows once this commits), and the account itself emptied.

    The row stays, renamed to an anonymous placeholder of its own that nobody can sign in to, so the lab attempts and
    quiz results it owns stay in their cohort's gradebook as one former learner's line ("deleted-learner-…"). One
    placeholder per person rather than one shared "deleted learner" keeps two former learners' scores apart; nulling
    the attempts' owner instead would change four apps' models and the gradebook for the same result."""
    if user.is_staff:
        raise PermissionDenied("Staff accounts are removed by an operator in the admin, so their cohorts find a new "
                               "instructor first.")
    if not user.check_password(password):
        raise AccountError("That is not your password, so the account was not deleted.")
    with transaction.atomic():
        for sandbox_id in Sandbox.objects.filter(owner=user).exclude(state__in=FINAL).values_list("pk", flat=True):
            sandbox_services.sandbox_request_stop(sandbox_id=sandbox_id, reason="The learner deleted their account.")
        for recording in TerminalRecording.objects.filter(sandbox__owner=user):
            recording.delete()  # one by one, so each file's receiver runs
        # Their AWS account and all in it: keys, functions (environments removed once this commits), logs, schedules.
        aws_account_close(user=user)
        user.username = f"{DELETED_PREFIX}{secrets.token_hex(6)}"
        user.email = ""
        user.first_name = user.last_name = ""
        user.is_active = False
        user.set_unusable_password()  # also ends every session of theirs: the session hash no longer matches
        user.save()
        EmailAddress.objects.filter(user=user).delete()
