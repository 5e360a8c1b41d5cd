"""How django-axes guards sign-in here: the address it counts failures by, and the page a locked-out learner sees."""
from __future__ import annotations

import ipaddress
import math

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def signin_client_address(request: HttpRequest) -> str:
    """The learner's address. Behind the TLS proxy every request comes from the proxy, so the address is the last one
    in X-Forwarded-For: the one the proxy itself appended. Earlier entries come from the client and are not trusted."""
    if settings.BEHIND_TLS_PROXY:
        appended = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(appended))
        except ValueError:
            pass  # no proxy in front after all, or not an address: the peer is the best there is
    return request.META.get("REMOTE_ADDR", "")


def signin_username(request: HttpRequest, credentials: dict | None = None) -> str:
    """The username failures are counted under: as accounts store it (lowercase), so "Ada" and "ADA" share ada's
    count instead of each getting a fresh set of guesses."""
    name = (credentials or {}).get("username") or getattr(request, "POST", {}).get("username", "") or ""
    return name.strip().lower()


class UsernameAnyCaseBackend(ModelBackend):
    """Signs in whatever case the username is typed in: sign-up and rosters store usernames in lowercase and refuse
    a second one differing only in case. An older account whose name differs from another only in case (made in the
    admin) is still found by its exact spelling."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username:
            matches = list(get_user_model()._default_manager.filter(username__iexact=username.strip())[:2])
            if len(matches) == 1:
                username = matches[0].get_username()
        return super().authenticate(request, username=username, password=password, **kwargs)


def _minutes_left(*, username: str, ip_address: str, request: HttpRequest) -> int:
    last_failure = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(
        last=Max("attempt_time"))["last"]
    if last_failure is None:
        return 1
    seconds = (last_failure + get_cool_off(request) - timezone.now()).total_seconds()
    return max(1, math.ceil(seconds / 60))


def signin_lockout_response(request: HttpRequest, *args) -> HttpResponse:
    """The sign-in page again, saying for how long this username is paused from this address.

    axes calls this with (request, response, credentials) or, from its async middleware, (request, credentials): the
    username is read from the form instead."""
    username = request.POST.get("username", "")
    minutes = _minutes_left(username=signin_username(request), ip_address=signin_client_address(request), request=request)
    return render(request, "registration/login.html", {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "lockout_minutes": minutes,
    }, status=settings.AXES_HTTP_RESPONSE_CODE)
