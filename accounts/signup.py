"""Who may create an account (the operator's SANDCLOUD_SIGNUP), and the username rule every new account follows."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator, RegexValidator

OPEN, INVITE, CLOSED = "open", "invite", "closed"
MODES = (OPEN, INVITE, CLOSED)

USERNAME_MIN_LENGTH = 2  # ACCOUNT_USERNAME_MIN_LENGTH in settings says the same to allauth
USERNAME_MAX_LENGTH = 30
# ASCII only: usernames are read aloud in class, typed on any keyboard, and handed out on paper by instructors.
username_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z",
    "A username may hold only the letters a–z, digits and . _ - (no spaces or accents), and starts with a letter or "
    "digit.",
)
username_length_validator = MaxLengthValidator(
    USERNAME_MAX_LENGTH, f"A username can be at most {USERNAME_MAX_LENGTH} characters.")


username_validators = [username_validator, username_length_validator]  # what ACCOUNT_USERNAME_VALIDATORS names


def signup_mode() -> str:
    return settings.SANDCLOUD_SIGNUP
