"""A learner does the "Containers are processes" lab in Chromium: a failed check, a hint, then every step passed."""
import re

import pytest
from playwright.sync_api import expect

from labs.models import Lab

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
def test_a_learner_completes_a_lab_by_typing_each_step_into_the_terminal(stack, published_labs, learner):
    lab = Lab.objects.get(slug=LAB_SLUG)
    steps = list(lab.steps.filter(is_active=True).order_by("position"))
    assert [step.points for step in steps] == [10, 10, 15, 15]
    # 10 points, less 1 for the failed check and 2 for the hint; the other steps are passed first time.
    earned = {steps[0].slug: 7} | {step.slug: step.points for step in steps[1:]}
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            refusals = csp_watch(page)
            sign_in(page, stack, username="ada", password="pw-ada", next_path=f"/labs/{LAB_SLUG}/")
            expect(page.get_by_role("heading", name="Containers are processes")).to_be_visible()
            page.get_by_role("button", name="Start the lab").click()
            terminal_wait_for_prompt(page)
            indicator_watch(page, "#terminal-connection", "data-connection")
            panel = page.locator("#step-panel")
            result = panel.locator(".sc-attempt")

            # Given nothing done yet, when the learner checks step 1, its FAIL line tells them what is missing.
            page.locator("#check-button").click()
            expect(result).to_have_attribute("data-status", "failed", timeout=30_000)
            expect(result).to_contain_text("Not yet")
            expect(result.locator(".sc-attempt-message")).to_have_text("~/answers/sleep.pid is missing or empty.")

            panel.get_by_role("button", name=re.compile(r"^Show a hint \(1 of 2\)")).click()
            expect(panel.locator("#hints")).to_contain_text("Hint 1:")
            expect(panel.locator("#hints")).to_contain_text("holds the PID of the last command you started")
            expect(panel.get_by_role("button", name=re.compile(r"^Show a hint \(2 of 2\)"))).to_be_visible()
            # Redrawing the step leaves the sandbox alone: it still runs and can still be stopped.
            expect(page.get_by_role("button", name="Stop")).to_be_visible()
            page.screenshot(path="/tmp/pw-lab-mid.png")

            for step in steps:
                expect(panel.get_by_role("heading", name=step.title)).to_be_visible()
                terminal_type(page, step.solution_script.splitlines(), done_marker=f"typed-{step.slug}")
                page.locator("#check-button").click()
                expect(result).to_have_attribute("data-status", "passed", timeout=30_000)
                expect(result).to_contain_text(f"Passed · +{earned[step.slug]} points")
                # The result event on the sandbox's stream redraws the step: marked passed, the next one unlocked.
                expect(panel).to_contain_text("Step passed.", timeout=15_000)
                # Everything typed reached the shell over one connection: the terminal never showed "Reconnecting…".
                assert indicator_changes(page) == []
                if step is not steps[-1]:
                    panel.get_by_role("link", name="Next step").click()
                    terminal_wait_for_prompt(page)
                    indicator_watch(page, "#terminal-connection", "data-connection")

            expect(panel.get_by_role("link", name="Next step")).to_have_count(0)
            expect(panel.locator("#lab-complete")).to_have_text("Lab completed · 47 / 50 points")
            expect(page.locator("#lab-points")).to_have_text("47 / 50 points · 4 of 4 steps")
            page.screenshot(path="/tmp/pw-lab-complete.png")
            # The lab page, its terminal and its htmx step panel all worked under the Content-Security-Policy.
            assert refusals == []
    finally:
        sandboxes_stop(learner)
