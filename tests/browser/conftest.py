"""Browser fixtures: the real stack, Chromium, the repository's labs, and the steps every journey repeats."""
from __future__ import annotations

import re
from urllib.parse import urlencode
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from config.processes import running_stack
from labs.models import Lab
from labs.services import labs_load
from sandbox import services as sandbox_services
from sandbox.models import Sandbox
from sandbox.states import ACTIVE

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture
def stack(transactional_db, docker_engine):
    """The base URL of daphne plus a real Celery worker, both on the test database."""
    with running_stack() as base_url:
        yield base_url


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright. Playwright runs an event loop in this thread while it is open, so Django
    refuses ORM calls until the block exits: read what the test needs before it, and clean up after it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def published_labs(transactional_db) -> list[Lab]:
    """The labs in labs/content, loaded as `manage.py labs load` does (the test database starts empty)."""
    report = labs_load()
    assert not report.errors, "\n".join(map(str, report.errors))
    return list(Lab.objects.filter(is_published=True))


def csp_watch(page: Page) -> list[str]:
    """Collects every refusal of the page's Content-Security-Policy from its next navigation on; the list fills as the
    test drives the page. Chromium's own "Refused to ..." lines do not reach Playwright, so an init script reports
    each securitypolicyviolation event (scripts, eval, styles, fonts, connections) on the console."""
    refusals: list[str] = []
    page.on("console", lambda message: refusals.append(message.text)
            if message.text.startswith(("Refused to", "CSP violation")) else None)
    page.add_init_script("""document.addEventListener("securitypolicyviolation", (event) =>
        console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`));""")
    return refusals


def sign_in(page: Page, base_url: str, *, username: str, password: str, next_path: str = "/") -> None:
    """Signs in through the login form, then lands on `next_path`."""
    page.goto(f"{base_url}/accounts/login/?{urlencode({'next': next_path})}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def terminal_rows(page: Page):
    return page.locator("#terminal .xterm-rows > div")


def terminal_wait_for_prompt(page: Page) -> None:
    # The shell prompt is the sign that tmux attached and drew the screen.
    expect(terminal_rows(page).filter(has_text="$").first).to_be_visible(timeout=60_000)
    expect(page.locator("#terminal-connection")).to_have_attribute("data-connection", "connected")


def terminal_type(page: Page, lines: list[str], *, done_marker: str) -> None:
    """Types each line into the terminal and presses Enter, then waits until the shell has run them all.

    The shell echoes `done_marker` only after every earlier line finished, so a check pressed next sees their effect.
    """
    page.locator("#terminal").click()
    for line in lines:
        page.keyboard.type(line)
        page.keyboard.press("Enter")
    page.keyboard.type(f"echo {done_marker}")
    page.keyboard.press("Enter")
    # The command line reads "...$ echo <marker>"; only its output is a row holding just the marker.
    expect(terminal_rows(page).filter(has_text=re.compile(rf"^\s*{re.escape(done_marker)}\s*$"))).to_have_count(
        1, timeout=20_000)


def sandboxes_stop(*users) -> None:
    """Stops every sandbox the users still have (lab sandboxes are started by the stack's worker, not by the test)."""
    for sandbox_id in Sandbox.objects.filter(owner__in=users, state__in=ACTIVE).values_list("pk", flat=True):
        sandbox_services.sandbox_stop(sandbox_id=sandbox_id)


def indicator_watch(page: Page, selector: str, attribute: str) -> None:
    """Records, in the page, every later change of an indicator such as the terminal's connection or the Live badge.

    The record lives in the document, so a reload loses it: reading it back also proves the page was not reloaded.
    """
    page.evaluate("""([selector, attribute]) => {
        const indicator = document.querySelector(selector);
        window.scIndicatorChanges = [];
        new MutationObserver(() => window.scIndicatorChanges.push(indicator.getAttribute(attribute)))
            .observe(indicator, { attributes: true, attributeFilter: [attribute] });
    }""", [selector, attribute])


def indicator_changes(page: Page) -> list[str] | None:
    """The changes since indicator_watch; None when the page was reloaded or left since."""
    return page.evaluate("window.scIndicatorChanges ?? null")
