"""Asking for garbage collections: one pending request stands for any number of deletions, and a collection the
front could not run leaves it pending for the next tend."""
from __future__ import annotations

import pytest

from config.processes import free_port
from sandbox.registry import collection
from sandbox.registry.models import GarbageCollection

pytestmark = pytest.mark.django_db


def test_many_deletions_ask_for_one_collection():
    for _ in range(3):
        collection.gc_request()

    assert GarbageCollection.objects.filter(status="PENDING").count() == 1


def test_a_collection_the_front_cannot_run_is_recorded_and_stays_pending(settings):
    settings.SANDCLOUD_REGISTRY = {**settings.SANDCLOUD_REGISTRY, "PORT": free_port()}  # nothing listens there
    collection.gc_request()

    record = collection.gc_run(timeout=5)

    assert record.status == "FAILED" and "did not answer" in record.detail
    assert collection.gc_pending()
