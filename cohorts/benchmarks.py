"""`manage.py bench dashboard`: the queries and time of one read of a cohort's progress matrix and gradebook."""
from __future__ import annotations

import time
from typing import Callable

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from labs.models import Attempt, Lab, LabStep
from sandbox.benchmarks.host import machine_facts
from sandbox.benchmarks.results import summarize

from . import selectors
from .models import Cohort, Membership

# What a learner's attempts on one step look like, cycled over learners × steps: untouched, failed, failed then
# passed, passed at once, a check still running. Five shapes give every matrix cell status and ~1.4 attempts a cell.
ATTEMPT_SHAPES = ((), (Attempt.Status.FAILED,), (Attempt.Status.FAILED, Attempt.Status.PASSED),
                  (Attempt.Status.PASSED,), (Attempt.Status.FAILED, Attempt.Status.RUNNING))


def bench_dashboard(*, learners: int = 200, labs: int = 3, steps: int = 3, reads: int = 10,
                    progress: Callable[[str], None] = lambda line: None) -> dict:
    """Builds a cohort of `learners` with attempts on `labs` × `steps`, then times `reads` reads of its matrix (the
    selector and the partial the dashboard re-fetches after every attempt) and of its gradebook. Everything runs in
    one transaction that is rolled back, so the install keeps no bench rows and learners never see the bench labs."""
    with transaction.atomic():
        cohort = _cohort_build(learners=learners, labs=labs, steps=steps, progress=progress)
        result = {"learners": learners, "labs": labs, "steps_per_lab": steps,
                  "attempts": Attempt.objects.filter(user__cohort_memberships__cohort=cohort).count(), "reads": reads}
        progress(f"{result['attempts']} attempts written; reading the matrix {reads} times")
        result["matrix_read"] = _measure(lambda: selectors.progress_matrix(cohort=cohort), reads=reads)
        result["matrix_partial"] = _measure(lambda: _matrix_render(cohort), reads=reads)
        result["gradebook_read"] = _measure(lambda: selectors.gradebook(cohort=cohort), reads=reads)
        transaction.set_rollback(True)
    result["machine"] = machine_facts()
    return result


def _measure(read: Callable[[], object], *, reads: int) -> dict:
    """Queries of one read (counted once) and the time of each read (timed without the query log's overhead)."""
    with CaptureQueriesContext(connection) as queries:
        read()
    timings = []
    for _ in range(reads):
        started = time.perf_counter()
        read()
        timings.append((time.perf_counter() - started) * 1000)
    return {"queries": len(queries), **{f"{key}_ms": value for key, value in summarize(timings).items() if key != "n"}}


def _matrix_render(cohort: Cohort) -> str:
    labs, rows = selectors.progress_matrix(cohort=cohort)
    return render_to_string("cohorts/_matrix.html", {"cohort": cohort, "labs": labs, "rows": rows})


def _cohort_build(*, learners: int, labs: int, steps: int, progress: Callable[[str], None]) -> Cohort:
    users = get_user_model().objects
    # Only the bench's labs are published inside the transaction, so the figures do not depend on the install's labs.
    Lab.objects.update(is_published=False)
    instructor = users.create_user("bench-dashboard-instructor", is_staff=True)
    cohort = Cohort.objects.create(name="Bench cohort", instructor=instructor, invite_code="BENCHDASH")
    users.bulk_create([users.model(username=f"bench-dashboard-{n}") for n in range(learners)])
    members = list(users.filter(username__startswith="bench-dashboard-", is_staff=False).order_by("pk"))
    Membership.objects.bulk_create([Membership(cohort=cohort, learner=member) for member in members])
    all_steps = []
    for n in range(labs):
        lab = Lab.objects.create(slug=f"bench-dashboard-{n}", title=f"Bench lab {n}", summary="Bench.",
                                 difficulty=Lab.Difficulty.BEGINNER, estimated_minutes=10, source_hash="bench")
        all_steps += LabStep.objects.bulk_create([
            LabStep(lab=lab, slug=f"step-{s}", position=s, title=f"Step {s}", instructions_html="<p>Bench.</p>",
                    solution_script="true", points=10) for s in range(steps)])
    progress(f"{len(members)} learners and {labs} labs × {steps} steps created; writing attempts")
    attempts = []
    for index, (member, step) in enumerate((member, step) for member in members for step in all_steps):
        for status in ATTEMPT_SHAPES[index % len(ATTEMPT_SHAPES)]:
            passed = status == Attempt.Status.PASSED
            attempts.append(Attempt(user=member, lab_id=step.lab_id, step=step, status=status, passed=passed,
                                    points=step.points if passed else 0))
    Attempt.objects.bulk_create(attempts, batch_size=500)
    return cohort
