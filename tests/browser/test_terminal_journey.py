"""A learner's first minute in Chromium: sign in, start a sandbox from the home page, run a command in its terminal."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORT, chromium, csp_watch, sandboxes_stop, sign_in, terminal_rows, \
    terminal_type, terminal_wait_for_prompt


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_starts_a_sandbox_and_runs_a_command_in_its_terminal(stack, django_user_model):
    learner = django_user_model.objects.create_user("ada", password="pw-ada")
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            refusals = csp_watch(page)
            sign_in(page, stack, username="ada", password="pw-ada")
            expect(page.get_by_role("heading", name="My sandboxes")).to_be_visible()

            page.get_by_role("button", name="Start a sandbox").click()
            expect(page).to_have_url(re.compile(r"/sandboxes/\d+/$"))
            terminal_wait_for_prompt(page)
            terminal_type(page, ["echo hello"], done_marker="typed-all")

            # The command line reads "...$ echo hello"; only the command's output is a row of just "hello".
            rows = terminal_rows(page)
            expect(rows.filter(has_text=re.compile(r"^\s*hello\s*$"))).to_have_count(1)
            expect(rows.filter(has_text="$ echo hello")).to_have_count(1)
            # The sign-in page, the home page and the terminal all worked under the Content-Security-Policy.
            assert refusals == []
    finally:
        sandboxes_stop(learner)
