"""Sign-up (django-allauth) as the operator's SANDCLOUD_SIGNUP allows, with an optional cohort invite code."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from cohorts.models import Cohort, Membership

pytestmark = pytest.mark.django_db
SIGNUP = "/accounts/signup/"
User = get_user_model()


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cohort(instructor):
    return Cohort.objects.create(name="Cloud 101", instructor=instructor, invite_code="DEMO2026")


def sign_up(client, username="newton", password="apples-fall-down", **extra):
    return client.post(SIGNUP, {"username": username, "password1": password, "password2": password, **extra})


def errors_of(response) -> str:
    return " ".join(str(e) for errors in response.context["form"].errors.values() for e in errors)


def test_open_sign_up_makes_the_account_and_signs_the_learner_in(client, settings):
    settings.SANDCLOUD_SIGNUP = "open"

    response = sign_up(client)

    assert response.status_code == 302 and response.url == reverse("home")
    assert client.get("/").wsgi_request.user.get_username() == "newton"


def test_an_invite_code_joins_the_cohort_at_once_and_lands_the_learner_there(client, settings, cohort):
    settings.SANDCLOUD_SIGNUP = "invite"

    response = sign_up(client, invite_code=" demo 2026 ")

    assert response.status_code == 302 and response.url == reverse("cohort-index")
    learner = User.objects.get(username="newton")
    assert Membership.objects.filter(cohort=cohort, learner=learner).exists()
    page = client.get(response.url).content.decode()
    assert "You joined “Cloud 101”." in page


def test_invite_only_sign_up_without_a_code_is_refused_and_says_why(client, settings):
    settings.SANDCLOUD_SIGNUP = "invite"

    response = sign_up(client)

    assert response.status_code == 200
    assert "Sign-up here needs a cohort invite code: ask your instructor for it." in errors_of(response)
    assert not User.objects.filter(username="newton").exists()


def test_a_wrong_code_creates_nobody(client, settings, cohort):
    settings.SANDCLOUD_SIGNUP = "open"

    response = sign_up(client, invite_code="NOPE2026")

    assert "No cohort has that invite code" in errors_of(response)
    assert not User.objects.filter(username="newton").exists()


def test_the_code_of_a_closed_cohort_creates_nobody(client, settings, cohort):
    settings.SANDCLOUD_SIGNUP = "invite"
    Cohort.objects.filter(pk=cohort.pk).update(is_closed=True)

    response = sign_up(client, invite_code="DEMO2026")

    assert "“Cloud 101” is closed to new learners." in errors_of(response)
    assert not User.objects.filter(username="newton").exists()


def test_closed_sign_up_shows_no_form_and_creates_nobody(client, settings):
    settings.SANDCLOUD_SIGNUP = "closed"

    page = client.get(SIGNUP).content.decode()
    sign_up(client)

    assert "Sign-up is closed" in page and 'name="password1"' not in page
    assert not User.objects.filter(username="newton").exists()
    assert "Create an account" not in client.get("/").content.decode()


@pytest.mark.parametrize("username", ["new ton", "émile", "newton!", "-newton", "n" * 31])
def test_a_username_outside_the_rule_is_refused_in_plain_words(client, settings, username):
    settings.SANDCLOUD_SIGNUP = "open"

    response = sign_up(client, username=username)

    assert response.status_code == 200
    assert "A username may hold only the letters a–z" in errors_of(response) or "at most 30" in errors_of(response)
    assert User.objects.count() == 0


def test_a_taken_username_is_refused_whatever_its_case(client, settings, learner):
    settings.SANDCLOUD_SIGNUP = "open"

    response = sign_up(client, username="ADA")

    assert "already" in errors_of(response).lower()
    assert User.objects.filter(username__iexact="ada").count() == 1


def test_a_password_djangos_validators_refuse_is_refused(client, settings):
    settings.SANDCLOUD_SIGNUP = "open"

    response = sign_up(client, password="12345678")

    assert "too common" in errors_of(response) or "entirely numeric" in errors_of(response)
    assert not User.objects.filter(username="newton").exists()


def test_the_sign_in_page_offers_sign_up_only_when_it_is_open(client, settings):
    settings.SANDCLOUD_SIGNUP = "invite"
    assert 'id="login-signup"' in client.get(reverse("login")).content.decode()
    settings.SANDCLOUD_SIGNUP = "closed"
    assert 'id="login-signup"' not in client.get(reverse("login")).content.decode()
