"""Sends a learner whose password an instructor made to the password change page before any other page."""
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

SESSION_KEY = "sandcloud_must_change_password"


class PasswordChangeRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The flag rides in the session (set at sign-in by accounts/signals.py): no query on every request.
        if request.user.is_authenticated and request.session.get(SESSION_KEY) and not self._allowed(request.path):
            text = "Choose a new password of your own first: the one you signed in with was a one-time password."
            if request.path.startswith("/api/"):
                return JsonResponse({"message": text, "error": text}, status=403)
            messages.info(request, text)
            return redirect("account_change_password")
        return self.get_response(request)

    @staticmethod
    def _allowed(path: str) -> bool:
        return path.startswith(("/static/", reverse("account_change_password"), reverse("logout")))
