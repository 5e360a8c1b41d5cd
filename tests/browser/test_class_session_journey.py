"""An instructor schedules a class session from the dashboard and watches its sandboxes get ready (Chromium)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cohorts.models import ClassSession
from sandbox.models import PoolReservation
from sandbox.pools.services import pools_drain, pools_tend

from .conftest import VIEWPORT, chromium, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.docker]


def off_the_browser_thread(call):
    """Django refuses the ORM in the thread Playwright's event loop runs in: database work goes to another one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def bring_forward() -> int:
    """As if the session's time had come: it starts in a minute, its lead time has passed; then one pool pass."""
    now = timezone.now()
    ClassSession.objects.update(starts_at=now + timedelta(minutes=1))
    PoolReservation.objects.update(ramp_from=now - timedelta(minutes=10), ready_by=now + timedelta(minutes=1))
    return pools_tend().started_total


def test_an_instructor_schedules_a_class_session_and_sees_its_sandboxes_prepared(stack, published_labs, instructor,
                                                                                 learner):
    cohort = instructor.cohorts_taught.get()
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, stack, username="maria", password="pw-maria", next_path=f"/cohorts/{cohort.pk}/")
            form = page.locator("#class-session-schedule")
            form.get_by_label("Lab").select_option(label="Resource limits")
            form.get_by_role("button", name="Schedule").click()  # its default start: in 15 minutes
            expect(page.locator(".alert").first).to_contain_text("Class session scheduled: Resource limits")
            row = page.locator("[data-class-session]")
            expect(row).to_have_attribute("data-status", "scheduled")
            expect(row).to_contain_text("1 expected")

            assert off_the_browser_thread(bring_forward) == 1
            expect(row).to_have_attribute("data-status", "preparing", timeout=15_000)
            expect(row.locator("[data-ready]")).to_have_text("1 of 1")

            page.once("dialog", lambda dialog: dialog.accept())
            row.get_by_role("button", name="Cancel the session of Resource limits").click()
            expect(row).to_have_attribute("data-status", "cancelled", timeout=15_000)
            page.screenshot(path="/tmp/pw-class-session.png", full_page=True)
    finally:
        pools_drain()
