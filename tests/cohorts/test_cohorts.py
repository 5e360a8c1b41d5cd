"""Cohorts: creating, joining, who may see a dashboard, and an instructor's actions on learners' sandboxes."""
import html
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import PermissionDenied
from django.test import Client

from cohorts import services
from cohorts.services import INVITE_ALPHABET, INVITE_LENGTH
from sandbox.models import Sandbox
from tests.sandbox.test_consumers import close_code, headers_for
from channels.testing import WebsocketCommunicator
from config.asgi import application


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_instructor_creates_a_cohort_with_a_readable_invite_code(staff_user):
    cohort = services.cohort_create(instructor=staff_user, name="  Cloud 101  ")
    assert cohort.name == "Cloud 101"
    assert len(cohort.invite_code) == INVITE_LENGTH and set(cohort.invite_code) <= set(INVITE_ALPHABET)


def test_a_learner_cannot_create_a_cohort(learner):
    with pytest.raises(PermissionDenied):
        services.cohort_create(instructor=learner, name="Mine")


def test_a_learner_joins_with_the_code_typed_loosely(staff_user, learner):
    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    loose = " " + cohort.invite_code[:4].lower() + " " + cohort.invite_code[4:].lower()
    assert services.cohort_join(learner=learner, invite_code=loose) == cohort
    services.cohort_join(learner=learner, invite_code=cohort.invite_code)  # joining twice is harmless
    assert cohort.memberships.count() == 1


def test_a_wrong_code_gets_a_plain_message_on_the_page(learner):
    response = client_for(learner).post("/cohorts/", {"action": "join", "invite_code": "NOPE1234"}, follow=True)
    assert "No cohort has that invite code" in response.content.decode()


def test_only_the_cohorts_instructor_sees_its_dashboard_and_gradebook(staff_user, learner, other_learner,
                                                                     django_user_model):
    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    services.cohort_join(learner=learner, invite_code=cohort.invite_code)
    other_teacher = django_user_model.objects.create_user("otto", password="pw", is_staff=True)
    for url in (f"/cohorts/{cohort.pk}/", f"/cohorts/{cohort.pk}/gradebook.csv", f"/cohorts/{cohort.pk}/sandboxes/",
                f"/cohorts/{cohort.pk}/learners/{learner.pk}/"):
        assert client_for(learner).get(url).status_code == 403, url
        assert client_for(other_teacher).get(url).status_code == 403, url
        assert client_for(staff_user).get(url).status_code == 200, url


def test_the_live_feed_refuses_anyone_but_the_instructor(transactional_db, staff_user, learner):
    # Committed rows: each socket's database calls run on a thread of their own (config/websockets.py).
    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    communicator = WebsocketCommunicator(application, f"/ws/cohorts/{cohort.pk}/", headers=headers_for(user=learner))
    assert async_to_sync(close_code)(communicator) == 4403


def test_an_instructor_extends_and_stops_a_learners_sandbox(start_sandbox, learner, instructor):
    sandbox = start_sandbox(learner)
    cohort = instructor.cohorts_taught.get()
    teacher = client_for(instructor)
    teacher.post(f"/cohorts/{cohort.pk}/sandboxes/{sandbox.pk}/extend/")
    extended = Sandbox.objects.get(pk=sandbox.pk)
    assert (extended.expires_at - sandbox.expires_at).total_seconds() == 30 * 60
    teacher.post(f"/cohorts/{cohort.pk}/sandboxes/{sandbox.pk}/terminate/")
    stopped = Sandbox.objects.get(pk=sandbox.pk)
    assert stopped.state == Sandbox.State.STOPPED


def test_an_instructor_resets_a_sandbox_into_a_fresh_one(start_sandbox, learner, instructor):
    sandbox = start_sandbox(learner)
    cohort = instructor.cohorts_taught.get()
    client_for(instructor).post(f"/cohorts/{cohort.pk}/sandboxes/{sandbox.pk}/reset/")
    fresh = Sandbox.objects.filter(owner=learner).exclude(pk=sandbox.pk).get()
    assert fresh.state == Sandbox.State.RUNNING and fresh.container_id != sandbox.container_id
    assert Sandbox.objects.get(pk=sandbox.pk).state == Sandbox.State.STOPPED
    from sandbox import services as sandbox_services

    sandbox_services.sandbox_stop(sandbox_id=fresh.pk)


def test_an_instructor_cannot_touch_sandboxes_of_learners_outside_their_cohorts(start_sandbox, other_learner,
                                                                                instructor):
    sandbox = start_sandbox(other_learner)
    cohort = instructor.cohorts_taught.get()
    response = client_for(instructor).post(f"/cohorts/{cohort.pk}/sandboxes/{sandbox.pk}/terminate/")
    assert response.status_code == 403
    assert Sandbox.objects.get(pk=sandbox.pk).state == Sandbox.State.RUNNING


def test_the_replay_page_is_for_the_owner_and_their_instructor_only(start_sandbox, learner, other_learner,
                                                                    instructor):
    sandbox = start_sandbox(learner)
    url = f"/cohorts/recordings/{sandbox.pk}/"
    assert client_for(learner).get(url).status_code == 200
    assert client_for(instructor).get(url).status_code == 200
    assert client_for(other_learner).get(url).status_code == 403


def test_the_replay_link_on_a_learners_page_plays_the_minutes_before_the_attempt(start_sandbox, learner, instructor,
                                                                                 practice_lab):
    from labs.models import Attempt

    # Given an attempt whose time carries a "+00:00" offset, which a bare query string would turn into a space
    sandbox = start_sandbox(learner)
    step = practice_lab.steps.get(slug="make-file")
    Attempt.objects.create(user=learner, lab=practice_lab, step=step, sandbox=sandbox, status=Attempt.Status.FAILED)
    cohort = instructor.cohorts_taught.get()
    teacher = client_for(instructor)

    # When the instructor follows the replay link from the learner's page to the player and the player's cast
    page = teacher.get(f"/cohorts/{cohort.pk}/learners/{learner.pk}/").content.decode()
    player_url = html.unescape(re.search(r'href="(/cohorts/recordings/[^"]+)"', page).group(1))
    player = teacher.get(player_url)
    cast_url = html.unescape(re.search(r'data-cast="([^"]+)"', player.content.decode()).group(1))
    cast = teacher.get(cast_url)

    # Then the recording API answers with the cast of the minutes before the attempt
    assert player.status_code == 200
    assert cast.status_code == 200, cast.content
    assert cast["Content-Type"] == "application/x-asciicast"


@pytest.fixture
def practice_lab(tmp_path):
    from labs.models import Lab
    from labs.services import labs_load
    from tests.labs.conftest import PRACTICE_LAB, lab_folder_write

    lab_folder_write(tmp_path, "practice", PRACTICE_LAB)
    assert not labs_load(root=tmp_path).errors
    return Lab.objects.get(slug="practice")


def passed(user, step, points):
    from labs.models import Attempt

    return Attempt.objects.create(user=user, lab=step.lab, step=step, status=Attempt.Status.PASSED, passed=True,
                                  points=points)


def test_the_gradebook_has_a_row_per_learner_and_a_column_per_lab(staff_user, learner, django_user_model,
                                                                   practice_lab):
    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    sneaky = django_user_model.objects.create_user("=HYPERLINK(1)", password="pw")
    for member in (learner, sneaky):
        services.cohort_join(learner=member, invite_code=cohort.invite_code)
    first, second = practice_lab.steps.order_by("position")
    passed(learner, first, 10)
    passed(learner, second, 5)
    passed(sneaky, first, 8)

    response = client_for(staff_user).get(f"/cohorts/{cohort.pk}/gradebook.csv")

    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "learner,practice,total"
    assert "ada,15,15" in lines
    assert "'=HYPERLINK(1),8,8" in lines  # never a formula in the instructor's spreadsheet


def test_the_progress_matrix_shows_passed_tried_and_untouched_steps(staff_user, learner, practice_lab):
    from labs.models import Attempt

    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    services.cohort_join(learner=learner, invite_code=cohort.invite_code)
    first, second = practice_lab.steps.order_by("position")
    Attempt.objects.create(user=learner, lab=practice_lab, step=first, status=Attempt.Status.FAILED)
    html = client_for(staff_user).get(f"/cohorts/{cohort.pk}/matrix/").content.decode()
    assert f'data-learner="{learner.pk}" data-step="{first.pk}"' in html
    assert html.count("sc-cell sc-cell-tried") == 1 and html.count("sc-cell sc-cell-none") == 1
    passed(learner, first, 9)
    html = client_for(staff_user).get(f"/cohorts/{cohort.pk}/matrix/").content.decode()
    assert html.count("sc-cell sc-cell-passed") == 1


def test_the_instructors_live_feed_hears_an_attempt_as_it_lands(transactional_db, staff_user, learner, practice_lab):
    from cohorts.events import cohort_attempt_publish

    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    services.cohort_join(learner=learner, invite_code=cohort.invite_code)
    step = practice_lab.steps.order_by("position").first()
    attempt = passed(learner, step, 10)
    communicator = WebsocketCommunicator(application, f"/ws/cohorts/{cohort.pk}/", headers=headers_for(user=staff_user))

    async def scenario():
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        await sync_to_async(cohort_attempt_publish)(attempt=attempt)
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message == {"type": "attempt", "learner": learner.pk, "step": step.pk, "lab": practice_lab.pk,
                       "status": "passed", "passed": True, "points": 10, "attempt": attempt.pk}
