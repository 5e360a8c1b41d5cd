"""Accessibility in Chromium: the axe-core audit itself, every page a learner and an instructor reach, and a lab step
checked with the keyboard alone."""
import re

import pytest
from playwright.sync_api import expect

from cohorts.models import Cohort
from lessons.models import Lesson
from lessons.services import lessons_load
from sandbox.awsapi.identity import aws_account_for
from sandbox.registry.services import repository_create

from .conftest import VIEWPORT, chromium, sandboxes_stop, sign_in, terminal_rows, terminal_wait_for_prompt

LAB_SLUG = "containers-are-processes"
PHONE = {"width": 390, "height": 844}
PAGE = """<!doctype html><html lang="en"><head><title>An audited page</title></head>
<body><main><h1>A diagram</h1>{image}</main></body></html>"""
IMAGE_WITHOUT_ALT = '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">'
IMAGE_WITH_ALT = '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20" alt="A dot">'


def serve(page, url: str, html: str) -> None:
    page.route(url, lambda route: route.fulfill(content_type="text/html", body=html))


def test_a_page_with_an_image_without_alt_text_fails_the_browser_test():
    with pytest.raises(AssertionError) as failure:
        with chromium() as browser:
            page = browser.new_page()
            serve(page, "http://broken.test/", PAGE.format(image=IMAGE_WITHOUT_ALT))
            page.goto("http://broken.test/")
    assert "critical image-alt" in str(failure.value)
    assert "on http://broken.test/: img" in str(failure.value)


def test_a_violation_on_a_page_the_test_has_already_left_still_fails_it():
    with pytest.raises(AssertionError, match=r"critical image-alt .* on http://broken\.test/"):
        with chromium() as browser:
            page = browser.new_page()
            serve(page, "http://broken.test/", PAGE.format(image=IMAGE_WITHOUT_ALT))
            serve(page, "http://fine.test/", PAGE.format(image=IMAGE_WITH_ALT))
            page.goto("http://broken.test/")
            # The audit run on the page's load event reports on its own; the test only gives it the time to.
            for _ in range(50):
                if browser.audit.violations:
                    break
                page.wait_for_timeout(100)
            page.goto("http://fine.test/")  # only this page is open when the block ends


def test_a_page_without_violations_passes():
    with chromium() as browser:
        page = browser.new_page()
        serve(page, "http://fine.test/", PAGE.format(image=IMAGE_WITH_ALT))
        page.goto("http://fine.test/")
        assert browser.audit.audit(page) == []


def tab_to(page, selector: str, *, key: str = "Tab", presses: int = 60) -> None:
    """Presses Tab (or Shift+Tab) until the element matching `selector` has the focus, as a learner without a mouse
    would."""
    for _ in range(presses):
        page.keyboard.press(key)
        if page.evaluate("(selector) => document.activeElement?.matches(selector) ?? false", selector):
            return
    raise AssertionError(f"{selector} was not reached with {presses} presses of {key}")


@pytest.mark.browser
@pytest.mark.docker
def test_every_page_a_learner_and_an_instructor_reach_passes_the_audit(stack, published_labs, learner, instructor):
    lessons_load()
    lesson = Lesson.objects.filter(body_html__contains="<pre").order_by("order").first()
    cohort = Cohort.objects.get(instructor=instructor)
    repository_create(account=aws_account_for(user=learner), name="hello")
    try:
        # Every violation found is listed, with its page, when the block ends.
        with chromium() as browser:
            def audit(page, path: str) -> None:
                """Audits the page at a phone's width, where more of it wraps and scrolls, and at a laptop's."""
                page.goto(stack + path)
                page.wait_for_load_state("networkidle")  # what htmx loads after the page, too
                for viewport in (PHONE, VIEWPORT):
                    page.set_viewport_size(viewport)
                    browser.audit.audit(page)

            visitor = browser.new_page(viewport=VIEWPORT)
            for path in ["/", "/accounts/login/", "/accounts/signup/", "/lessons/", f"/lessons/{lesson.slug}/",
                         "/no-such-page/"]:
                audit(visitor, path)

            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, stack, username="ada", password="pw-ada", next_path=f"/labs/{LAB_SLUG}/")
            audit(page, f"/labs/{LAB_SLUG}/")
            page.get_by_role("button", name="Start the lab").click()
            terminal_wait_for_prompt(page)
            page.locator("#check-button").click()
            expect(page.locator("#step-panel .sc-attempt")).to_have_attribute("data-status", "failed", timeout=30_000)
            sandbox_id = page.locator("#sandbox-page").get_attribute("data-sandbox-id")
            for path in [f"/labs/{LAB_SLUG}/", f"/sandboxes/{sandbox_id}/", "/", "/lessons/",
                         f"/lessons/{lesson.slug}/", "/labs/", "/functions/", "/docker/", "/registry/",
                         "/registry/repositories/hello/", "/aws-keys/", "/cohorts/", "/accounts/settings/",
                         "/accounts/delete/", "/staff/sandboxes/"]:
                audit(page, path)
            audit(page, f"/lessons/{lesson.slug}/")
            page.get_by_role("button", name="Submit answers").click()
            expect(page.get_by_text("You scored")).to_be_visible()
            browser.audit.audit(page)

            teacher = browser.new_page(viewport=VIEWPORT)
            sign_in(teacher, stack, username="maria", password="pw-maria", next_path="/")
            for path in ["/cohorts/", f"/cohorts/{cohort.pk}/", f"/cohorts/{cohort.pk}/learners/{learner.pk}/",
                         f"/cohorts/{cohort.pk}/roster/", "/staff/sandboxes/", f"/sandboxes/{sandbox_id}/",
                         f"/functions/learner/{learner.pk}/"]:
                audit(teacher, path)
    finally:
        sandboxes_stop(learner)


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_without_a_mouse_checks_a_lab_step_and_hears_each_result(stack, published_labs, learner):
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, stack, username="ada", password="pw-ada", next_path=f"/labs/{LAB_SLUG}/")
            announcer = page.locator("#sc-announcer")
            expect(announcer).to_have_attribute("aria-live", "polite")

            # The first Tab shows the skip link; following it, the next Tab lands in the page's main content.
            page.keyboard.press("Tab")
            skip = page.get_by_role("link", name="Skip to main content")
            expect(skip).to_be_focused()
            assert skip.bounding_box()["width"] > 100  # shown, not the 1-pixel box it hides in
            page.keyboard.press("Enter")
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.closest('main') !== null")

            tab_to(page, "#lab-start")
            page.keyboard.press("Enter")
            terminal_wait_for_prompt(page)
            # The connected terminal takes the focus and keeps Tab for the shell: Escape, then Tab, leaves it. The
            # step's instructions come before it.
            page.keyboard.press("Escape")
            tab_to(page, "#check-button", key="Shift+Tab")
            page.keyboard.press("Enter")
            expect(announcer).to_contain_text("Not yet", timeout=30_000)
            expect(announcer).to_contain_text("~/answers/sleep.pid is missing or empty.")
            expect(page.locator("#check-button")).to_be_focused()  # the redrawn step kept the learner's place

            tab_to(page, "#hint-button", key="Shift+Tab")
            page.keyboard.press("Enter")
            expect(announcer).to_contain_text("Hint 1:")
            expect(page.locator("#hint-button")).to_be_focused()

            # The step's Run buttons type its commands into the terminal, which takes the focus each time.
            for command in ["sleep 4242 &", "echo $! > ~/answers/sleep.pid"]:
                page.keyboard.press("Escape")
                tab_to(page, f'pre[data-run="{command}"] .sc-run-button', key="Shift+Tab")
                page.keyboard.press("Enter")
                expect(page.locator(".xterm-helper-textarea")).to_be_focused()
            # Typed in the terminal, its output is the sign that the commands before it ran.
            page.keyboard.type("echo typed-step-1")
            page.keyboard.press("Enter")
            expect(terminal_rows(page).filter(has_text=re.compile(r"^\s*typed-step-1\s*$"))).to_have_count(1)
            page.keyboard.press("Escape")
            tab_to(page, "#check-button", key="Shift+Tab")
            page.keyboard.press("Enter")
            expect(announcer).to_contain_text("Passed", timeout=30_000)
            # The Check button is gone with the step passed: the focus moves to the way on, and Enter follows it.
            expect(page.get_by_role("link", name="Next step")).to_be_focused(timeout=15_000)
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Look at the fences from inside")).to_be_visible()
    finally:
        sandboxes_stop(learner)
