"""How allauth behaves here: sign-up follows SANDCLOUD_SIGNUP, and a learner who joined a cohort lands on it."""
from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib import messages
from django.urls import reverse

from .signup import CLOSED, signup_mode


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return signup_mode() != CLOSED

    def get_signup_redirect_url(self, request) -> str:
        cohort = getattr(request, "sandcloud_joined", None)
        if cohort is not None:
            messages.success(request, f"Welcome! You joined “{cohort.name}”.")
            return reverse("cohort-index")
        return super().get_signup_redirect_url(request)
