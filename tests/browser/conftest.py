"""Browser fixtures: the real stack, Chromium audited by axe-core, the repository's labs, and the steps every journey
repeats."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

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


AXE_CORE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = ("serious", "critical")

# Runs axe-core in the top document once the page has loaded and again once htmx swaps have settled, and hands each
# result to Python through the __scAxeReport binding. It comes in as an init script (sent over CDP, so the site's
# Content-Security-Policy does not apply). Audits are queued because axe refuses to run twice at once, and each waits
# for finite animations (Bootstrap's fades) so contrast is measured on what the learner ends up seeing.
AXE_RUNNER = """(() => {
  if (window.top !== window || window.__scAxe) return;
  const options = { runOnly: { type: "tag", values: %(tags)s }, resultTypes: ["violations"] };
  const failing = %(impacts)s;
  let queue = Promise.resolve();
  function settled() {
    const finite = document.getAnimations().filter((a) => a.effect && a.effect.getTiming().iterations !== Infinity);
    return Promise.all(finite.map((a) => a.finished.catch(() => null)));
  }
  async function failingViolations() {
    await settled();
    const results = await window.axe.run(document, options);
    return results.violations.filter((v) => failing.includes(v.impact)).map((v) => ({
      id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((node) => node.target.join(" ")),
      why: (v.nodes[0].failureSummary || "").replace(/\s+/g, " "),
    }));
  }
  function audit() {
    queue = queue.catch(() => null).then(async () => {
      if (document.contentType !== "text/html") return { url: location.href, violations: [] };  // JSON, a cast...
      let violations = await failingViolations();
      // Colours caught half-way through a transition that began during the audit (a button fading into its hover or
      // focus colours while the test moves on: 4.49:1 once) are not what the learner ends up seeing. A contrast
      // failure counts when it is still there once the page has settled again.
      if (violations.some((v) => v.id === "color-contrast")) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        violations = await failingViolations();
      }
      return { url: location.href, violations };
    });
    return queue;
  }
  function report() {
    audit().then((result) => window.__scAxeReport(result))
      .catch((error) => window.__scAxeReport({ url: location.href, error: String(error), violations: [] }));
  }
  window.__scAxe = { audit };
  window.addEventListener("load", () => report());
  let settle;
  document.addEventListener("htmx:afterSettle", () => { clearTimeout(settle); settle = setTimeout(report, 300); });
})();""" % {"tags": AXE_TAGS, "impacts": list(FAILING_IMPACTS)}


@dataclass(frozen=True)
class AxeViolation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]
    url: str
    why: str = ""  # axe's own words on the first of the targets

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:8]) + (f" and {len(self.targets) - 8} more" if len(self.targets) > 8 else "")
        return f"{self.impact} {self.rule} ({self.help}) on {self.url}: {shown}\n    first: {self.why}"


class AccessibilityAudit:
    """Every serious or critical axe-core violation seen on the pages of the contexts it watches."""

    def __init__(self) -> None:
        self.violations: dict[tuple[str, str, tuple[str, ...]], AxeViolation] = {}
        self.errors: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        context.add_init_script(path=AXE_CORE)
        context.add_init_script(AXE_RUNNER)
        context.expose_binding("__scAxeReport", self._report)

    def audit(self, page: Page) -> list[AxeViolation]:
        """Audits the page as it is now (besides the audits after each load and htmx swap) and returns what failed."""
        result = page.evaluate("() => window.__scAxe.audit()")
        return self._record(result)

    def _report(self, _source, result: dict) -> None:
        # What a binding returns goes back to the page, which has no use for it.
        self._record(result)

    def _record(self, result: dict) -> list[AxeViolation]:
        if result.get("error"):
            self.errors.append(f"axe-core could not audit {result['url']}: {result['error']}")
        found = [AxeViolation(rule=v["id"], impact=v["impact"], help=v["help"], targets=tuple(v["targets"]),
                              url=result["url"], why=v["why"]) for v in result["violations"]]
        for violation in found:
            self.violations.setdefault((violation.url, violation.rule, violation.targets), violation)
        return found

    def assert_clean(self) -> None:
        problems = self.errors + [str(violation) for violation in self.violations.values()]
        assert not problems, "accessibility audit (axe-core %s):\n  " % " / ".join(FAILING_IMPACTS) + \
            "\n  ".join(problems)


class AuditedBrowser:
    """A Browser whose every context, and so every page, is audited by axe-core."""

    def __init__(self, browser: Browser, audit: AccessibilityAudit) -> None:
        self._browser = browser
        self.audit = audit
        self._contexts: list[BrowserContext] = []

    def new_context(self, **options) -> BrowserContext:
        context = self._browser.new_context(**options)
        self.audit.watch(context)
        self._contexts.append(context)
        return context

    def new_page(self, **options) -> Page:
        return self.new_context(**options).new_page()

    def audit_open_pages(self) -> None:
        # A page left quickly may have been navigated away from before its own audit finished: what is open at the
        # end is audited once more, now.
        for context in self._contexts:
            for page in context.pages:
                if not page.is_closed() and page.url.startswith("http"):
                    self.audit.audit(page)

    def __getattr__(self, name):
        return getattr(self._browser, name)


@contextmanager
def chromium() -> Iterator[AuditedBrowser]:
    """Debian's Chromium under Playwright, with axe-core auditing every page: the block fails on a serious or critical
    accessibility violation on any page it visited. Playwright runs an event loop in this thread while it is open, so
    Django refuses ORM calls until the block exits: read what the test needs before it, and clean up after it."""
    audit = AccessibilityAudit()
    with sync_playwright() as playwright:
        browser = AuditedBrowser(
            playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS), audit)
        try:
            yield browser
            browser.audit_open_pages()
        finally:
            browser.close()
    audit.assert_clean()


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


def page_problems(page: Page) -> list[str]:
    """Collects what went wrong in the page from now on (script errors, console errors, failed or refused requests), to
    say why an element never appeared."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"{request.url} failed: {request.failure}"))
    page.on("response", lambda response: problems.append(f"{response.url} answered {response.status}")
            if response.status >= 400 else None)
    return problems


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
