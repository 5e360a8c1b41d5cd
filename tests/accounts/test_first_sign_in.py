"""A learner given a one-time password must choose their own at first sign-in, before any other page."""
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import PasswordChangeRequired
from cohorts.models import Cohort
from cohorts.services import roster_add

pytestmark = pytest.mark.django_db
User = get_user_model()
CHANGE = "/accounts/password/change/"


@pytest.fixture
def one_time(instructor):
    result = roster_add(cohort=Cohort.objects.get(instructor=instructor), instructor=instructor, text="katherine")
    return result.passwords[0][2]


def sign_in(client, password):
    return client.post(reverse("login"), {"username": "katherine", "password": password, "next": "/labs/"})


def test_the_first_sign_in_leads_to_choosing_a_new_password_and_nowhere_else(client, one_time):
    signed_in = sign_in(client, one_time)
    elsewhere = client.get("/labs/")
    api = client.get("/api/sandboxes/")

    assert signed_in.status_code == 302
    assert elsewhere.status_code == 302 and elsewhere.url == CHANGE
    assert api.status_code == 403 and "Choose a new password of your own first" in api.json()["message"]
    page = client.get(CHANGE).content.decode()
    assert "the one you signed in with was a one-time password" in page


def test_after_choosing_a_password_the_learner_goes_on_and_the_old_one_is_gone(client, one_time):
    sign_in(client, one_time)

    client.post(CHANGE, {"oldpassword": one_time, "password1": "katherine-chose-this", "password2":
                         "katherine-chose-this"})

    assert client.get("/labs/").status_code == 200
    assert not PasswordChangeRequired.objects.filter(user__username="katherine").exists()
    user = User.objects.get(username="katherine")
    assert user.check_password("katherine-chose-this") and not user.check_password(one_time)


def test_signing_out_is_allowed_before_choosing(client, one_time):
    sign_in(client, one_time)

    response = client.post(reverse("logout"))

    assert response.status_code == 302 and not client.get("/").wsgi_request.user.is_authenticated


def test_the_instructor_command_makes_a_staff_instructor(learner):
    call_command("instructor", "add", "ADA")

    learner.refresh_from_db()
    assert learner.is_staff


def test_the_instructor_command_names_a_missing_account(db):
    with pytest.raises(CommandError, match="No account is called 'nobody'"):
        call_command("instructor", "add", "nobody")
