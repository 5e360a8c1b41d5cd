"""A learner deletes their account: sandboxes stopped and removed, recordings gone, attempts kept anonymised."""
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from cohorts import selectors as cohort_selectors
from cohorts.models import Cohort
from labs.models import Attempt
from sandbox.models import Sandbox, TerminalRecording
from tests.cohorts.test_cohorts import passed, practice_lab  # noqa: F401 - practice_lab is a fixture

DELETE = "/accounts/delete/"
User = get_user_model()


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.docker
def test_deleting_stops_the_sandboxes_removes_recordings_and_keeps_the_attempts_anonymised(
        client, settings, tmp_path, learner, instructor, start_sandbox, docker_engine, practice_lab):
    # Given a learner in a cohort with a running sandbox, a terminal recording and a passed lab step
    sandbox = start_sandbox(learner)
    cast = tmp_path / "session.cast"
    cast.write_text('{"version": 2}\n')
    TerminalRecording.objects.create(sandbox=sandbox, path=str(cast))
    passed(learner, practice_lab.steps.order_by("position").first(), 7)
    client.force_login(learner)

    # When they delete their account with their password
    response = client.post(DELETE, {"password": "pw-ada", "confirm": "yes"}, follow=True)

    # Then they are signed out on the front page, told what happened
    assert "Your account is deleted." in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated
    # their sandbox is stopped and its container gone, their recording (row and file) deleted
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.STOPPED
    assert docker_engine.state(sandbox.container_id) is None
    assert not TerminalRecording.objects.filter(sandbox=sandbox).exists() and not Path(cast).exists()
    # nobody can sign in as them and the username is free again
    former = User.objects.get(pk=learner.pk)
    assert former.username.startswith("deleted-learner-") and not former.has_usable_password()
    assert not User.objects.filter(username="ada").exists()
    # and the gradebook still counts their points, under the anonymous name
    cohort = Cohort.objects.get(instructor=instructor)
    _, rows = cohort_selectors.gradebook(cohort=cohort)
    assert [row[0] for row in rows] == [former.username] and rows[0][-1] == 7
    assert Attempt.objects.filter(user=former).count() == 1


@pytest.mark.django_db
def test_a_wrong_password_deletes_nothing(client, learner):
    client.force_login(learner)

    response = client.post(DELETE, {"password": "not-it", "confirm": "yes"}, follow=True)

    assert "That is not your password, so the account was not deleted." in response.content.decode()
    assert User.objects.filter(username="ada", is_active=True).exists()


@pytest.mark.django_db
def test_without_the_confirmation_nothing_is_deleted(client, learner):
    client.force_login(learner)

    response = client.post(DELETE, {"password": "pw-ada"}, follow=True)

    assert "Tick the box to confirm" in response.content.decode()
    assert User.objects.filter(username="ada").exists()


@pytest.mark.django_db
def test_the_page_says_attempts_are_kept_anonymised(client, learner):
    client.force_login(learner)

    page = client.get(DELETE).content.decode()

    assert "Your lab attempts and quiz results are kept, anonymised" in page
    assert 'name="csrfmiddlewaretoken"' in page


@pytest.mark.django_db
def test_a_staff_account_is_not_deleted_from_here(client, staff_user):
    client.force_login(staff_user)

    response = client.post(DELETE, {"password": "pw-ines", "confirm": "yes"}, follow=True)

    assert "Staff accounts are removed by an operator" in response.content.decode()
    assert User.objects.filter(username="ines", is_active=True).exists()
