"""Sign-in under django-axes: wrong passwords pause one username from one address, for a time the page states."""
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

LOGIN = "/accounts/login/"
LIMIT = 5


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    # Every wrong password is hashed; the default hasher would make these tests slow without testing anything more.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_in(client: Client, username: str, password: str, **headers):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/"}, **headers)


def fail(client: Client, username: str, times: int, **headers):
    for _ in range(times):
        response = sign_in(client, username, "not-my-password", **headers)
    return response


def signed_in_as(client: Client) -> str | None:
    user = client.get("/").wsgi_request.user  # visitors get the front page at /, so ask who the request was
    return user.get_username() if user.is_authenticated else None


@pytest.mark.django_db
def test_wrong_passwords_pause_the_username_and_the_page_says_for_how_long(learner):
    client = Client()

    # Given one wrong password fewer than the limit, the learner is only told the password is wrong
    response = fail(client, "ada", LIMIT - 1)
    assert response.status_code == 200
    assert "paused" not in response.text

    # When they get it wrong once more
    response = fail(client, "ada", 1)

    # Then the sign-in page says, in plain words, that signing in is paused and for how long
    assert response.status_code == 429
    assert "Too many wrong passwords for this username, so signing in is paused for 15 minutes." in response.text
    assert 'name="username"' in response.text and 'value="ada"' in response.text


@pytest.mark.django_db
def test_the_right_password_is_refused_while_the_username_is_paused(learner):
    client = Client()
    fail(client, "ada", LIMIT)

    # When the learner now types the right password
    response = sign_in(client, "ada", "pw-ada")

    # Then they are still not signed in, no session was made for them, and the page still says how long to wait
    assert response.status_code == 429
    assert "signing in is paused for" in response.text
    assert signed_in_as(client) is None
    assert not any(session.get_decoded().get("_auth_user_id") for session in Session.objects.all())


@pytest.mark.django_db
def test_another_learner_signs_in_from_the_same_address_while_one_is_paused(learner, other_learner):
    assert fail(Client(), "ada", LIMIT).status_code == 429

    # When another learner in the same classroom (same address) signs in
    client = Client()
    response = sign_in(client, "grace", "pw-grace")

    # Then they get in as usual
    assert response.status_code == 302
    assert signed_in_as(client) == "grace"


@pytest.mark.django_db
def test_wrong_passwords_from_another_address_do_not_lock_the_learner_out(learner):
    # Given somebody elsewhere who tried the learner's username until it was paused for them
    assert fail(Client(REMOTE_ADDR="198.51.100.7"), "ada", LIMIT).status_code == 429

    # When the learner signs in from their own address, then they get in
    client = Client(REMOTE_ADDR="192.0.2.10")
    assert sign_in(client, "ada", "pw-ada").status_code == 302
    assert signed_in_as(client) == "ada"


@pytest.mark.django_db
def test_the_pause_ends_after_the_cool_off(learner):
    cool_off = timedelta(seconds=2)
    client = Client()
    with override_settings(AXES_COOLOFF_TIME=cool_off):
        assert fail(client, "ada", LIMIT).status_code == 429

        # When the cool-off has passed
        time.sleep(cool_off.total_seconds() + 0.5)

        # Then the right password signs the learner in again
        assert sign_in(client, "ada", "pw-ada").status_code == 302
    assert signed_in_as(client) == "ada"


@pytest.mark.django_db
def test_a_correct_sign_in_clears_the_earlier_failures(learner):
    client = Client()
    fail(client, "ada", LIMIT - 1)
    assert sign_in(client, "ada", "pw-ada").status_code == 302
    client.post("/accounts/logout/")

    # When the learner mistypes after a good sign-in, then the count starts again: the pause comes at the limit
    assert fail(client, "ada", LIMIT - 1).status_code == 200
    assert fail(client, "ada", 1).status_code == 429


@pytest.mark.django_db
@override_settings(BEHIND_TLS_PROXY=True)
def test_behind_the_proxy_a_forged_forwarded_address_does_not_reset_the_count(learner):
    client = Client(REMOTE_ADDR="127.0.0.1")  # every request comes from the proxy on this machine

    # Given an attacker who puts a new address of their choosing in front of each request; the proxy appends theirs
    for attempt in range(LIMIT):
        response = sign_in(client, "ada", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}, 198.51.100.7")

    # Then they are paused all the same
    assert response.status_code == 429
    # while the learner, whose own address the proxy appends, signs in
    assert sign_in(client, "ada", "pw-ada", HTTP_X_FORWARDED_FOR="192.0.2.10").status_code == 302


@pytest.mark.django_db
def test_a_username_signs_in_whatever_case_it_is_typed_in(learner):
    client = Client()

    assert sign_in(client, "Ada", "pw-ada").status_code == 302
    assert signed_in_as(client) == "ada"


@pytest.mark.django_db
def test_changing_the_case_of_the_username_does_not_buy_more_guesses(learner):
    client = Client()
    for variant in ("ada", "Ada", "aDa", "adA"):
        response = sign_in(client, variant, "not-my-password")
    assert response.status_code == 200

    # When the fifth wrong password comes under yet another spelling
    response = sign_in(client, "ADA", "not-my-password")

    # Then the username is paused, for every spelling, the right password included
    assert response.status_code == 429
    assert "signing in is paused for 15 minutes" in response.text
    assert sign_in(client, "ada", "pw-ada").status_code == 429
