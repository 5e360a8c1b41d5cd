"""A learner's first minute in Chromium: sign in, start a sandbox from the home page, run a command in its terminal."""
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from config.processes import running_stack
from sandbox import services
from sandbox.models import Sandbox
from sandbox.states import ACTIVE

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_starts_a_sandbox_and_runs_a_command_in_its_terminal(transactional_db, docker_engine,
                                                                         django_user_model):
    learner = django_user_model.objects.create_user("ada", password="pw-ada")
    try:
        with running_stack() as base_url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})

            page.goto(base_url + "/")
            expect(page).to_have_url(re.compile(r"/accounts/login/"))
            page.get_by_label("Username").fill("ada")
            page.get_by_label("Password").fill("pw-ada")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="My sandboxes")).to_be_visible()

            page.get_by_role("button", name="Start a sandbox").click()
            expect(page).to_have_url(re.compile(r"/sandboxes/\d+/$"))
            rows = page.locator("#terminal .xterm-rows > div")
            # The shell prompt is the sign that tmux attached and drew the screen.
            expect(rows.filter(has_text="$").first).to_be_visible(timeout=60_000)

            page.locator("#terminal").click()
            page.keyboard.type("echo hello")
            page.keyboard.press("Enter")

            # The command line reads "...$ echo hello"; only the command's output is a row of just "hello".
            expect(rows.filter(has_text=re.compile(r"^\s*hello\s*$"))).to_have_count(1, timeout=15_000)
            expect(rows.filter(has_text="echo hello")).to_have_count(1)
            browser.close()
    finally:
        for sandbox_id in Sandbox.objects.filter(owner=learner, state__in=ACTIVE).values_list("pk", flat=True):
            services.sandbox_stop(sandbox_id=sandbox_id)
