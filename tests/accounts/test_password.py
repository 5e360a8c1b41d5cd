"""Changing a password, and resetting a forgotten one by e-mail (console mail in `make run`)."""
import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_learner_changes_their_password_and_signs_in_with_the_new_one(client, learner):
    client.force_login(learner)

    response = client.post("/accounts/password/change/", {
        "oldpassword": "pw-ada", "password1": "a-much-better-one", "password2": "a-much-better-one"})

    assert response.status_code == 302
    learner.refresh_from_db()
    assert learner.check_password("a-much-better-one") and not learner.check_password("pw-ada")


def test_a_wrong_current_password_changes_nothing(client, learner):
    client.force_login(learner)

    response = client.post("/accounts/password/change/", {
        "oldpassword": "not-it", "password1": "a-much-better-one", "password2": "a-much-better-one"})

    assert response.status_code == 200 and "Please type your current password." in response.content.decode()
    learner.refresh_from_db()
    assert learner.check_password("pw-ada")


def test_a_forgotten_password_is_reset_through_the_link_in_the_mail(client, learner, mailoutbox):
    learner.email = "ada@example.org"
    learner.save()

    client.post("/accounts/password/reset/", {"email": "ada@example.org"})

    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ada@example.org"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mailoutbox[0].body).group(1)
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0] if form.redirect_chain else link,
                {"password1": "found-it-again", "password2": "found-it-again"})
    learner.refresh_from_db()
    assert learner.check_password("found-it-again")
    client.post("/accounts/logout/")
    assert client.post("/accounts/login/", {"username": "ada", "password": "found-it-again"}).status_code == 302

