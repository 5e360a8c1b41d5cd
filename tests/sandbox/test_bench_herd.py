"""`bench herd` end to end with three learners: real accounts, daphne, a Celery worker and Docker."""
import pytest

from sandbox.models import PoolReservation, Sandbox, WarmContainer
from sandbox.pools.benchmarks import bench_herd
from sandbox.states import FINAL

pytestmark = pytest.mark.docker


def test_a_class_session_turns_a_herd_of_cold_starts_into_warm_ones(transactional_db, docker_engine):
    # Given three learners in a cohort, when they all press Start on a lab without and then with a class session
    result = bench_herd(learners=3, lab="resource-limits", lead_seconds=2)

    # then everyone got a prompt both times, and the class's starts were all claimed from its pool
    assert result["without_class"]["starts"]["ready"] == 3, result["without_class"]["errors"]
    assert result["with_class"]["starts"]["ready"] == 3, result["with_class"]["errors"]
    assert result["with_class"]["starts"]["warm"] == 3
    # and nothing is left running or reserved afterwards.
    assert not Sandbox.objects.exclude(state__in=FINAL).exists()
    assert not WarmContainer.objects.exists()
    assert not PoolReservation.objects.exists()
