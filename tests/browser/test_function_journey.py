"""A learner's first Lambda function in Chromium: create it, edit its code in the editor, save, invoke it, and watch
the REPORT line arrive in the live log; with screenshots of the pages at a laptop's and a phone's size."""
import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from sandbox.functions import reaper
from sandbox.functions.models import ExecutionEnvironment
from tests.browser.conftest import VIEWPORT, chromium, csp_watch, sign_in

PHONE = {"width": 375, "height": 812}


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_creates_edits_and_invokes_a_function_and_sees_its_report_in_the_live_log(
        stack, django_user_model, docker_engine):
    image = settings.SANDCLOUD_FUNCTIONS["RUNTIME_IMAGE"]
    if not docker_engine.has_image(image):
        pytest.fail(f"image {image} is missing: run `python manage.py sandbox images` (make test does)")
    django_user_model.objects.create_user("ada", password="pw-ada")
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            refusals = csp_watch(page)
            sign_in(page, stack, username="ada", password="pw-ada", next_path="/functions/")
            expect(page.get_by_role("heading", name="Functions", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name="Functions")).to_have_class(re.compile(r"\bactive\b"))

            # The CLI equivalent follows the form as the learner types.
            page.get_by_label("Function name").fill("greeter")
            page.get_by_label("Memory (MB)").fill("256")
            expect(page.locator("#create-cli")).to_contain_text("--function-name greeter")
            expect(page.locator("#create-cli")).to_contain_text("--memory-size 256")
            page.screenshot(path="/tmp/pw-function-create-desktop.png", full_page=True)
            page.get_by_role("button", name="Create function").click()
            expect(page).to_have_url(re.compile(r"/functions/greeter/$"))
            expect(page.get_by_text("Created greeter.")).to_be_visible()

            # The editor is CodeMirror, loaded from the esbuild bundle under the same Content-Security-Policy.
            expect(page.locator("#function-page")).to_have_attribute("data-editor", "ready", timeout=10_000)
            editor = page.get_by_role("textbox", name="Code of lambda_function.py")
            editor.click()
            page.keyboard.press("Control+Home")
            page.keyboard.type('print("edited in the browser")')
            page.keyboard.press("Enter")
            expect(page.locator("#code-dirty")).to_be_visible()
            page.keyboard.press("Control+s")
            expect(page.get_by_text("Saved. The next invocation runs the new code")).to_be_visible()
            expect(page.locator("#function-page")).to_have_attribute("data-editor", "ready", timeout=10_000)
            expect(page.locator(".cm-content")).to_contain_text('print("edited in the browser")')

            # Invoke: progress while the cold start runs, then the result, the REPORT line and the log tail.
            page.get_by_label("Test event (JSON)").fill('{"name": "Ada"}')
            page.get_by_role("button", name="Invoke").click()
            expect(page.locator("#invoke-status")).to_have_text(re.compile(r"Succeeded · 200"), timeout=60_000)
            expect(page.locator("#invoke-payload")).to_contain_text("Hello, Ada!")
            expect(page.locator("#invoke-report")).to_contain_text(re.compile(r"REPORT RequestId: \S+\s+Duration:"))
            expect(page.locator("#invoke-report")).to_contain_text("Init Duration")
            # The live log picks the same lines up from CloudWatch Logs: the module-level print, then REPORT.
            log = page.locator("#function-log")
            expect(log.locator(".sc-log-line", has_text="edited in the browser")).to_have_count(1, timeout=10_000)
            expect(log.locator(".sc-log-report")).to_have_count(1, timeout=10_000)
            expect(log.locator(".sc-log-report")).to_contain_text("Max Memory Used")
            # The monitoring panel counts the invocation and its cold start, and draws both charts.
            expect(page.locator("#count-invocations")).to_have_text("1", timeout=10_000)
            expect(page.locator("#count-cold-starts")).to_have_text("1")
            page.wait_for_timeout(300)  # the charts draw after the panel settles
            page.screenshot(path="/tmp/pw-function-detail-desktop.png", full_page=True)

            # A second, warm invocation adds its REPORT line without a reload and without an init phase.
            page.get_by_role("button", name="Invoke").click()
            expect(log.locator(".sc-log-report")).to_have_count(2, timeout=30_000)
            expect(page.locator("#invoke-report")).not_to_contain_text("Init Duration")

            page.get_by_role("link", name="All functions").click()
            row = page.locator("#function-table tbody tr", has_text="greeter")
            expect(row).to_contain_text("256 MB")
            expect(row.locator("td").nth(5)).to_have_text("2")  # invocations
            page.screenshot(path="/tmp/pw-function-list-desktop.png", full_page=True)
            row.get_by_role("link", name="greeter").click()

            page.set_viewport_size(PHONE)
            page.reload()
            expect(page.locator("#function-page")).to_have_attribute("data-editor", "ready", timeout=10_000)
            expect(log.locator(".sc-log-report")).to_have_count(2, timeout=10_000)
            page.wait_for_timeout(300)
            page.screenshot(path="/tmp/pw-function-detail-phone.png", full_page=True)
            page.goto(f"{stack}/functions/")
            page.screenshot(path="/tmp/pw-function-list-phone.png", full_page=True)
            assert refusals == []
    finally:
        reaper.environments_remove(rows=list(ExecutionEnvironment.objects.all()))
