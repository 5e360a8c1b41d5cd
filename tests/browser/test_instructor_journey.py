"""An instructor watches a learner pass a lab step on the live cohort dashboard, then downloads the gradebook."""
import csv
import re

import pytest
from playwright.sync_api import expect

from cohorts.models import Cohort
from labs.models import Lab, LabStep

from .conftest import (
    VIEWPORT,
    chromium,
    csp_watch,
    indicator_changes,
    indicator_watch,
    sandboxes_stop,
    sign_in,
    terminal_type,
    terminal_wait_for_prompt,
)

LAB_SLUG = "containers-are-processes"


@pytest.mark.browser
@pytest.mark.docker
def test_an_instructor_sees_a_learner_pass_a_step_live_and_downloads_the_gradebook(stack, published_labs, learner,
                                                                                   instructor):
    cohort = Cohort.objects.get(instructor=instructor)
    step = LabStep.objects.get(lab__slug=LAB_SLUG, position=1)
    try:
        with chromium() as browser:
            dashboard = browser.new_context(viewport=VIEWPORT).new_page()
            refusals = csp_watch(dashboard)
            sign_in(dashboard, stack, username="maria", password="pw-maria", next_path=f"/cohorts/{cohort.pk}/")
            expect(dashboard.locator("#live-badge")).to_have_attribute("data-state", "live")
            expect(dashboard.locator("#live-badge")).to_have_text("Live")
            cell = dashboard.locator(f'[data-learner="{learner.pk}"][data-step="{step.pk}"] .sc-cell')
            expect(cell).to_have_class(re.compile(r"\bsc-cell-none\b"))
            indicator_watch(dashboard, "#live-badge", "data-state")
            # The instructor opens the dashboard before anyone starts; it must stay live while nothing happens (the
            # channel layer waits on Redis in blocking reads of 5 s, so a quiet minute is a real test of it).
            dashboard.wait_for_timeout(7_000)
            assert indicator_changes(dashboard) == [], "the idle dashboard lost its live connection"

            # Meanwhile the learner, signed in on a browser of their own, starts the lab and passes step 1.
            lab_page = browser.new_context(viewport=VIEWPORT).new_page()
            lab_refusals = csp_watch(lab_page)
            sign_in(lab_page, stack, username="ada", password="pw-ada", next_path=f"/labs/{LAB_SLUG}/")
            lab_page.get_by_role("button", name="Start the lab").click()
            terminal_wait_for_prompt(lab_page)
            terminal_type(lab_page, step.solution_script.splitlines(), done_marker="typed-step-1")
            lab_page.locator("#check-button").click()
            expect(lab_page.locator("#step-panel .sc-attempt")).to_have_attribute("data-status", "passed",
                                                                                  timeout=30_000)

            expect(cell).to_have_class(re.compile(r"\bsc-cell-passed\b"), timeout=15_000)
            expect(dashboard.locator(f'[data-learner-total="{learner.pk}"]')).to_have_text("10")
            # Updated over the one live connection it opened: never reloaded, never "Reconnecting…".
            assert indicator_changes(dashboard) == []
            expect(dashboard.get_by_role("cell", name="containers-are-processes")).to_be_visible(timeout=10_000)
            dashboard.screenshot(path="/tmp/pw-instructor-dashboard.png", full_page=True)

            with dashboard.expect_download() as download_info:
                dashboard.get_by_role("link", name="Gradebook CSV").click()
            download = download_info.value
            with open(download.path(), newline="", encoding="utf-8") as gradebook:
                rows = list(csv.reader(gradebook))

            # The learner leaves, and the instructor replays their terminal before that check: the player fetches
            # the recording (once the closed session is written out) and draws what the learner typed.
            lab_page.close()
            dashboard.goto(f"{stack}/cohorts/{cohort.pk}/learners/{learner.pk}/")
            dashboard.get_by_role("link", name="Terminal, 5 min before").first.click()
            cast_url = dashboard.locator("#player").get_attribute("data-cast")
            for _ in range(40):
                if "typed-step-1" in dashboard.evaluate("(url) => fetch(url).then((r) => r.text())", cast_url):
                    break
                dashboard.wait_for_timeout(250)
            dashboard.locator("#player .ap-player").click()
            expect(dashboard.locator("#player .ap-term")).to_contain_text("typed-step-1", timeout=20_000)
            dashboard.screenshot(path="/tmp/pw-instructor-replay.png")
            # Dashboard, lab page, terminal and replay player all worked under the Content-Security-Policy.
            assert (refusals, lab_refusals) == ([], [])
    finally:
        sandboxes_stop(learner)

    assert download.suggested_filename.startswith(f"gradebook-{cohort.invite_code}-")
    # One column per lab (in the gradebook's order), the learner's 10 points under the lab they passed a step of.
    header, ada = rows
    assert header[0] == "learner" and header[-1] == "total"
    assert sorted(header[1:-1]) == sorted(Lab.objects.values_list("slug", flat=True))
    assert dict(zip(header, ada)) == {**{slug: "0" for slug in header[1:-1]}, "learner": "ada",
                                      "containers-are-processes": "10", "total": "10"}
    assert len(rows) == 2
