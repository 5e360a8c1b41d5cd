"""The labs services on real sandboxes: starting a lab once however often it is asked, and resetting a step."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from labs import services as labs_services
from labs.services import lab_start, step_reset
from sandbox.models import Sandbox
from sandbox.states import ACTIVE

pytestmark = pytest.mark.docker


def test_a_double_click_on_start_makes_one_lab_sandbox(lab_sandboxes, learner, practice_lab, monkeypatch):
    # Given a first click that is part-way through starting the lab (held for a moment once it has looked for an
    # existing sandbox) when the second click arrives
    first_click_inside = threading.Event()
    steps_current = labs_services.steps_current

    def steps_current_held_once(**kwargs):
        if not first_click_inside.is_set():
            first_click_inside.set()
            time.sleep(1)  # ample time for the second click to look for an existing sandbox
        return steps_current(**kwargs)

    monkeypatch.setattr(labs_services, "steps_current", steps_current_held_once)
    started: list[int] = []
    errors: list[BaseException] = []

    def click(after: threading.Event | None):
        try:
            if after is not None:
                after.wait(timeout=10)
            started.append(lab_start(user=learner, lab=practice_lab).pk)
        except BaseException as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(None,)), threading.Thread(target=click, args=(first_click_inside,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then both clicks get the same sandbox, and the learner has only that one for the lab
    assert not errors, errors
    assert len(started) == 2 and started[0] == started[1]
    active = Sandbox.objects.filter(owner=learner, lab_slug="practice", state__in=ACTIVE)
    assert list(active.values_list("pk", flat=True)) == [started[0]]


def test_starting_a_started_lab_returns_its_sandbox(lab_sandboxes, learner, practice_lab):
    first = lab_start(user=learner, lab=practice_lab)
    second = lab_start(user=learner, lab=practice_lab)
    assert second.pk == first.pk
    assert Sandbox.objects.filter(owner=learner, lab_slug="practice", state__in=ACTIVE).count() == 1


def test_a_labs_time_limit_is_its_sandboxs_lifetime(lab_sandboxes, learner, practice_lab, settings):
    from datetime import timedelta

    practice_lab.environment = {**practice_lab.environment, "time_limit_minutes": 45}
    practice_lab.save(update_fields=["environment"])
    sandbox = lab_start(user=learner, lab=practice_lab)
    sandbox.refresh_from_db()
    assert sandbox.expires_at - sandbox.created_at == timedelta(minutes=45)
    assert settings.SANDCLOUD["TTL_MINUTES"] != 45  # not the platform's default by chance


def test_a_reset_replaces_the_lab_sandbox_with_a_fresh_one(lab_sandboxes, learner, practice_lab):
    old = lab_start(user=learner, lab=practice_lab)

    fresh = step_reset(user=learner, step=practice_lab.steps.get(slug="make-file"))

    fresh.refresh_from_db()
    old.refresh_from_db()
    assert fresh.pk != old.pk and fresh.state == Sandbox.State.RUNNING, fresh.failure_reason
    assert old.state == Sandbox.State.STOPPED
