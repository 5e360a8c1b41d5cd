"""The dashboard's cost: the matrix and gradebook in constant queries, and one engine sample per sandbox for all viewers."""
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cohorts import selectors, services
from labs.models import Attempt
from labs.selectors import lab_progress_for
from sandbox.engine.docker import DockerEngine
from tests.cohorts.test_cohorts import client_for, practice_lab  # noqa: F401 - practice_lab is a fixture
from tests.conftest import run_in


def cohort_of(staff_user, django_user_model, lab, *, learners: int):
    """A cohort of `learners`, each with a failed and a passed attempt on the lab's first step."""
    cohort = services.cohort_create(instructor=staff_user, name=f"Cohort of {learners}")
    first = lab.steps.order_by("position").first()
    for n in range(learners):
        member = django_user_model.objects.create_user(f"learner-{learners}-{n}")
        services.cohort_join(learner=member, invite_code=cohort.invite_code)
        Attempt.objects.create(user=member, lab=lab, step=first, status=Attempt.Status.FAILED)
        Attempt.objects.create(user=member, lab=lab, step=first, status=Attempt.Status.PASSED, passed=True, points=7)
    return cohort


@pytest.mark.parametrize("read", [selectors.progress_matrix, selectors.gradebook], ids=["matrix", "gradebook"])
def test_a_read_costs_the_same_queries_for_2_and_20_learners(staff_user, django_user_model, practice_lab, read):
    small = cohort_of(staff_user, django_user_model, practice_lab, learners=2)
    large = cohort_of(staff_user, django_user_model, practice_lab, learners=20)

    with CaptureQueriesContext(connection) as for_small:
        small_result = read(cohort=small)
    with CaptureQueriesContext(connection) as for_large:
        large_result = read(cohort=large)

    assert len(large_result[1]) == 20 and len(small_result[1]) == 2  # both really read their learners
    assert len(for_large) == len(for_small) <= 5, [q["sql"] for q in for_large]


def test_the_matrix_agrees_with_each_learners_own_progress(staff_user, learner, other_learner, practice_lab):
    # Given learners whose attempts cover every status, including one still running and one the platform lost
    cohort = services.cohort_create(instructor=staff_user, name="Cloud 101")
    for member in (learner, other_learner):
        services.cohort_join(learner=member, invite_code=cohort.invite_code)
    first, second = practice_lab.steps.order_by("position")
    for status, points in ((Attempt.Status.FAILED, 0), (Attempt.Status.PASSED, 8), (Attempt.Status.PASSED, 6)):
        Attempt.objects.create(user=learner, lab=practice_lab, step=first, status=status, points=points)
    Attempt.objects.create(user=learner, lab=practice_lab, step=second, status=Attempt.Status.TIMED_OUT)
    Attempt.objects.create(user=learner, lab=practice_lab, step=second, status=Attempt.Status.RUNNING)
    Attempt.objects.create(user=other_learner, lab=practice_lab, step=first, status=Attempt.Status.ERROR)

    labs, rows = selectors.progress_matrix(cohort=cohort)
    header, book = selectors.gradebook(cohort=cohort)

    # Then each cell says what the learner's own lab page says
    assert [step for _, steps in labs for step in steps] == [first, second]
    for member, cells, total in rows:
        progress = lab_progress_for(user=member, lab=practice_lab)
        assert total == progress.points
        for (step, cell), mine in zip(cells, progress.steps):
            assert (step, cell.points, cell.attempts) == (mine.step, mine.points, mine.attempts_counted)
    cells = {member.username: [cell.status for _, cell in member_cells] for member, member_cells, _ in rows}
    assert cells == {"ada": ["passed", "pending"], "grace": ["none", "none"]}
    assert book == [["ada", 8, 8], ["grace", 0, 0]]


class StatsSpy:
    """Counts the engine's real stats calls; `hold` keeps each call open so a second viewer arrives meanwhile."""

    def __init__(self, monkeypatch, hold: float = 0.0):
        self.calls, self.hold, real = [], hold, DockerEngine.stats

        def stats(engine, container, **kwargs):
            self.calls.append(kwargs)
            result = real(engine, container, **kwargs)
            time.sleep(self.hold)
            return result

        monkeypatch.setattr(DockerEngine, "stats", stats)


def test_two_dashboard_tabs_share_one_one_shot_sample_per_sandbox(start_sandbox, learner, instructor, monkeypatch):
    sandbox = start_sandbox(learner)
    cohort = instructor.cohorts_taught.get()
    spy = StatsSpy(monkeypatch)

    tabs = [client_for(instructor).get(f"/cohorts/{cohort.pk}/sandboxes/") for _ in range(2)]

    assert spy.calls == [{"one_shot": True}]
    for tab in tabs:
        assert tab.status_code == 200
        assert "/ 256.0\xa0MB" in tab.content.decode()  # each tab shows the sandbox's memory from the shared sample
    assert sandbox.pk in selectors.sandboxes_stats(sandboxes=[sandbox])


def test_viewers_arriving_while_a_sample_is_taken_wait_for_it_instead_of_sampling(start_sandbox, learner,
                                                                                    monkeypatch):
    sandbox = start_sandbox(learner)
    spy = StatsSpy(monkeypatch, hold=0.5)
    seen = []

    def viewer():
        seen.append(selectors.sandboxes_stats(sandboxes=[sandbox])[sandbox.pk])

    viewers = [threading.Thread(target=viewer) for _ in range(3)]
    for thread in viewers:
        thread.start()
    for thread in viewers:
        thread.join()

    assert len(spy.calls) == 1
    assert len(seen) == 3 and all(stats and stats["memory_bytes"] > 0 for stats in seen)


def test_cpu_is_the_share_between_two_one_shot_samples(start_sandbox, learner, monkeypatch):
    sandbox = start_sandbox(learner)
    monkeypatch.setattr(selectors, "STATS_FRESH_SECONDS", 0.0)  # every read takes a new sample
    run_in(sandbox, "setsid timeout 5 sh -c 'while :; do :; done' >/dev/null 2>&1 </dev/null &", timeout=5)

    first = selectors.sandboxes_stats(sandboxes=[sandbox])[sandbox.pk]
    time.sleep(1)
    second = selectors.sandboxes_stats(sandboxes=[sandbox])[sandbox.pk]

    assert first["cpu_percent"] is None  # one sample says nothing about CPU
    # The loop burns its whole quota (0.5 CPU = 50 %); the share is measured, not a since-boot average.
    assert sandbox.cpus * 100 * 0.3 <= second["cpu_percent"] <= sandbox.cpus * 100 * 1.3, second
