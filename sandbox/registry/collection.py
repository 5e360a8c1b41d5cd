"""Garbage collection of the registry, as the platform asks for it: deletions leave a PENDING request, the periodic
tend asks the front to collect (the front holds new pushes and drains the ones under way first) and records how it
went."""
from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.utils import timezone

from .models import GarbageCollection
from .tokens import Access, bearer_token_issue

logger = logging.getLogger(__name__)
CONTROL_PATH = "/sandcloud/garbage-collect"
CONTROL_ACCESS = Access("registry", "garbage-collect", ("*",))  # never granted to a learner (tokens.access_granted)


def gc_request() -> None:
    """Asks for a collection at the next tend (one pending request stands for any number of deletions)."""
    if not GarbageCollection.objects.filter(status=GarbageCollection.Status.PENDING).exists():
        GarbageCollection.objects.create()


def gc_run(*, timeout: float | None = None) -> GarbageCollection:
    """Has the front collect now, whether or not one is pending, and answers the run's record (DONE, POSTPONED or
    FAILED). The pending request is taken first, so a deletion during the run asks for the next one; a run that did
    not happen asks again. The front answers when the collection is over: draining waits up to GC_DRAIN_SECONDS."""
    pending = GarbageCollection.objects.filter(status=GarbageCollection.Status.PENDING)
    requested = min((each.requested for each in pending), default=timezone.now())
    pending.delete()
    token = bearer_token_issue(subject="sandcloud", access=[CONTROL_ACCESS], seconds=60)
    url = f"http://127.0.0.1:{settings.SANDCLOUD_REGISTRY['PORT']}{CONTROL_PATH}"
    wait = timeout or settings.SANDCLOUD_REGISTRY["GC_DRAIN_SECONDS"] + 300
    try:
        response = requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=wait)
        outcome = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code != 200:
            outcome = {"status": "FAILED", "detail": outcome.get("detail") or f"HTTP {response.status_code}"}
    except (requests.RequestException, ValueError) as error:
        outcome = {"status": "FAILED", "detail": f"the registry's front did not answer: {error}"}
    status = outcome.get("status")
    if status not in (GarbageCollection.Status.DONE, GarbageCollection.Status.POSTPONED):
        status = GarbageCollection.Status.FAILED
    if status != GarbageCollection.Status.DONE:
        logger.warning("registry garbage collection %s: %s", status, outcome.get("detail"))
        gc_request()  # tried again at the next tend
    record = GarbageCollection(status=status, requested=requested, finished=timezone.now())
    for field in ("bytes_before", "bytes_after", "held_writes", "held_seconds", "seconds"):
        if field in outcome:
            setattr(record, field, outcome[field])
    record.detail = str(outcome.get("detail", ""))[:2000]
    record.save()
    logger.info("registry garbage collection %s: %s → %s bytes", record.status, record.bytes_before,
                record.bytes_after)
    return record


def gc_pending() -> bool:
    return GarbageCollection.objects.filter(status=GarbageCollection.Status.PENDING).exists()
