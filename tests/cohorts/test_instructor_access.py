"""An instructor who loses is_staff loses every cohort path: pages, the gradebook, sandbox actions and the live feed."""
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from cohorts import services
from cohorts.events import cohort_attempt_publish
from config.asgi import application
from sandbox.models import Sandbox
from tests.cohorts.test_cohorts import client_for, passed, practice_lab  # noqa: F401 - practice_lab is a fixture
from tests.sandbox.test_consumers import close_code, headers_for

HIDDEN_OUTPUT = "grader-internal: expected /home/learner/answers/hello.txt"


@pytest.fixture
def demoted(django_user_model, learner, practice_lab):  # noqa: F811
    """A user who taught a cohort (with a learner, an attempt and a running sandbox row) and then lost is_staff."""
    from labs.models import Attempt

    teacher = django_user_model.objects.create_user("dora", password="pw-dora", is_staff=True)
    cohort = services.cohort_create(instructor=teacher, name="Evening cohort")
    services.cohort_join(learner=learner, invite_code=cohort.invite_code)
    step = practice_lab.steps.order_by("position").first()
    Attempt.objects.create(user=learner, lab=practice_lab, step=step, status=Attempt.Status.FAILED,
                           output=HIDDEN_OUTPUT)
    # A row is enough: the refusal must come before anything reaches the engine.
    sandbox = Sandbox.objects.create(owner=learner, image="sandcloud/workstation:1", memory_mb=256, cpus=0.5,
                                     pids_limit=256, uid=64999, state=Sandbox.State.RUNNING,
                                     expires_at=timezone.now() + timedelta(hours=1))
    teacher.is_staff = False
    teacher.save(update_fields=["is_staff"])
    return teacher, cohort, sandbox


def test_a_demoted_instructor_gets_403_on_every_cohort_page(demoted, learner, staff_user):
    teacher, cohort, _ = demoted
    pages = [f"/cohorts/{cohort.pk}/", f"/cohorts/{cohort.pk}/matrix/", f"/cohorts/{cohort.pk}/sandboxes/",
             f"/cohorts/{cohort.pk}/learners/{learner.pk}/", f"/cohorts/{cohort.pk}/gradebook.csv"]

    responses = {url: client_for(teacher).get(url) for url in pages}

    for url, response in responses.items():
        assert response.status_code == 403, url
        assert HIDDEN_OUTPUT not in response.content.decode(), url
    # The same pages still open for someone who is staff and teaches the cohort (the refusal is about the demotion).
    teacher.is_staff = True
    teacher.save(update_fields=["is_staff"])
    assert client_for(teacher).get(f"/cohorts/{cohort.pk}/learners/{learner.pk}/").status_code == 200


def test_a_demoted_instructor_cannot_act_on_a_learners_sandbox(demoted):
    teacher, cohort, sandbox = demoted
    before = Sandbox.objects.get(pk=sandbox.pk)

    responses = [client_for(teacher).post(f"/cohorts/{cohort.pk}/sandboxes/{sandbox.pk}/{action}/")
                 for action in ("extend", "terminate", "reset")]

    assert [r.status_code for r in responses] == [403, 403, 403]
    after = Sandbox.objects.get(pk=sandbox.pk)
    assert (after.state, after.expires_at) == (before.state, before.expires_at)
    assert Sandbox.objects.filter(owner=sandbox.owner).count() == 1  # no reset sandbox was started


def test_a_demoted_instructors_live_feed_is_refused(transactional_db, demoted):
    # Committed rows: each socket's database calls run on a thread of their own (config/websockets.py).
    teacher, cohort, _ = demoted
    communicator = WebsocketCommunicator(application, f"/ws/cohorts/{cohort.pk}/", headers=headers_for(user=teacher))
    assert async_to_sync(close_code)(communicator) == 4403


def test_an_open_live_feed_closes_when_its_instructor_is_demoted(transactional_db, django_user_model, learner,
                                                                 practice_lab):  # noqa: F811
    teacher = django_user_model.objects.create_user("dora", password="pw-dora", is_staff=True)
    cohort = services.cohort_create(instructor=teacher, name="Evening cohort")
    services.cohort_join(learner=learner, invite_code=cohort.invite_code)
    step = practice_lab.steps.order_by("position").first()
    communicator = WebsocketCommunicator(application, f"/ws/cohorts/{cohort.pk}/", headers=headers_for(user=teacher))

    async def scenario():
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        # Given a live feed that hears attempts
        await sync_to_async(cohort_attempt_publish)(attempt=await sync_to_async(passed)(learner, step, 3))
        heard = await communicator.receive_json_from(timeout=10)
        # When the instructor loses is_staff and the next attempt lands
        await sync_to_async(django_user_model.objects.filter(pk=teacher.pk).update)(is_staff=False)
        await sync_to_async(cohort_attempt_publish)(attempt=await sync_to_async(passed)(learner, step, 9))
        after = await communicator.receive_output(timeout=10)
        await communicator.disconnect(timeout=5)
        return heard, after

    heard, after = async_to_sync(scenario)()
    assert heard["points"] == 3
    # Then the socket is closed instead of carrying the attempt
    assert after == {"type": "websocket.close", "code": 4403}
