"""The editor beside the terminal, in Chromium: a learner answers a lab step in it, leaves it by keyboard, meets a
binary file and a file changed on disk; an instructor watching sees it read-only."""
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from labs.models import Lab
from tests.conftest import run_in

from .conftest import (
    VIEWPORT,
    chromium,
    csp_watch,
    sandboxes_stop,
    sign_in,
    terminal_type,
    terminal_wait_for_prompt,
)

LAB_SLUG = "containers-vs-gvisor"
PHONE = {"width": 390, "height": 844}
SHOTS = Path("/tmp/editor-shots")


@pytest.fixture(autouse=True)
def patient_expectations():
    """Each file operation is a `docker exec` in the sandbox, ~0.1 s on a quiet machine but seconds when the suite's
    parallel processes share its two cores: wait up to 20 s for what the learner would see, not Playwright's 5 s."""
    expect.set_options(timeout=20_000)
    yield
    expect.set_options(timeout=5_000)


def editor_text(page: Page, path: str):
    return page.get_by_role("textbox", name=f"Contents of ~/{path}")


def tab(page: Page, name: str):
    return page.locator("#editor").get_by_role("tab", name=re.compile(rf"^{re.escape(name)}\b"))


def screenshots(page: Page, name: str) -> None:
    """The page at a laptop's size and at a phone's, for a person to look at."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}-1366x768.png")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)  # the terminal refits after its resize observer's pause
    page.screenshot(path=SHOTS / f"{name}-390x844.png", full_page=True)
    page.set_viewport_size(VIEWPORT)


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_answers_a_lab_step_in_the_editor_and_leaves_it_by_keyboard(stack, published_labs, learner):
    steps = list(Lab.objects.get(slug=LAB_SLUG).steps.filter(is_active=True).order_by("position"))
    assert steps[1].open_file == "answers/gvisor-is.txt"
    host_kernel = os.uname().release
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            refusals = csp_watch(page)
            sign_in(page, stack, username="ada", password="pw-ada", next_path=f"/labs/{LAB_SLUG}/")
            page.get_by_role("button", name="Start the lab").click()
            terminal_wait_for_prompt(page)
            panel = page.locator("#step-panel")
            editor = page.locator("#editor")

            # Step 1 is done in the terminal, as before the editor existed.
            terminal_type(page, steps[0].solution_script.splitlines(), done_marker="typed-step-1")
            page.locator("#check-button").click()
            expect(panel).to_contain_text("Step passed.", timeout=30_000)
            panel.get_by_role("link", name="Next step").click()
            terminal_wait_for_prompt(page)

            # Step 2 names its answer file: the editor opens it by itself, empty since it does not exist yet.
            answer = editor_text(page, "answers/gvisor-is.txt")
            expect(tab(page, "gvisor-is.txt")).to_have_attribute("aria-selected", "true", timeout=15_000)
            expect(editor).to_contain_text("~/answers/gvisor-is.txt does not exist yet: saving creates it.")
            answer.click()
            page.keyboard.type("b")
            expect(tab(page, "gvisor-is.txt")).to_contain_text("(unsaved changes)")
            page.keyboard.press("Control+s")
            expect(editor.get_by_role("status")).to_contain_text("Saved ~/answers/gvisor-is.txt")
            expect(tab(page, "gvisor-is.txt")).not_to_contain_text("(unsaved changes)")

            # A second answer, in a file the learner makes with New file in the answers folder.
            editor.get_by_role("treeitem", name="answers").click()
            editor.get_by_role("button", name="New file").click()
            dialog = page.get_by_role("dialog", name="New file")
            dialog.get_by_label("Name of the new file, in ~/answers").fill("host-kernel.txt")
            dialog.get_by_role("button", name="Create").click()
            expect(editor.get_by_role("treeitem", name="host-kernel.txt")).to_be_visible()
            expect(editor_text(page, "answers/host-kernel.txt")).to_be_focused()
            page.keyboard.type(host_kernel)
            page.keyboard.press("Control+s")
            expect(editor.get_by_role("status")).to_contain_text("Saved ~/answers/host-kernel.txt")
            browser.audit.audit(page)

            page.locator("#check-button").click()
            expect(panel.locator(".sc-attempt")).to_have_attribute("data-status", "passed", timeout=30_000)
            expect(panel).to_contain_text("Step passed.", timeout=15_000)
            screenshots(page, "lab-page")

            # Escape then Tab leaves the editor (Tab alone indents) ...
            tab(page, "gvisor-is.txt").click()
            answer.click()
            page.keyboard.press("End")
            page.keyboard.press("Tab")
            expect(answer).to_be_focused()
            expect(tab(page, "gvisor-is.txt")).to_contain_text("(unsaved changes)")
            page.keyboard.press("Control+z")
            expect(tab(page, "gvisor-is.txt")).not_to_contain_text("(unsaved changes)")
            page.keyboard.press("Escape")
            page.keyboard.press("Tab")
            expect(page.locator("#editor-toggle")).to_be_focused()
            # ... and the terminal, where Tab alone goes to the shell, backwards with Shift+Tab too.
            page.locator("#terminal").click()
            xterm_input = page.locator("#terminal textarea")
            page.keyboard.press("Tab")
            expect(xterm_input).to_be_focused()
            page.keyboard.press("Escape")
            page.keyboard.press("Shift+Tab")
            expect(page.locator("#editor-toggle")).to_be_focused()
            page.locator("#terminal").click()
            page.keyboard.press("Escape")
            page.keyboard.press("Tab")
            expect(xterm_input).not_to_be_focused()

            # A file the terminal makes shows up in the tree a moment after Enter; a binary one opens as such.
            terminal_type(page, ["head -c 100 /dev/urandom > ~/bin.dat"], done_marker="typed-binary")
            binary = editor.get_by_role("treeitem", name="bin.dat")
            expect(binary).to_be_visible()  # the refresh is itself a `docker exec`: see patient_expectations
            binary.click()
            expect(editor.get_by_role("tabpanel")).to_contain_text("Binary file, not editable")
            with page.expect_download() as download:
                editor.get_by_role("tabpanel").get_by_role("button", name="Download").click()
            assert Path(download.value.path()).stat().st_size == 100

            # The lab's sandbox on its own page: the same editor beside the terminal, with the side column.
            sandbox_id = page.locator("#sandbox-page").get_attribute("data-sandbox-id")
            page.goto(f"{stack}/sandboxes/{sandbox_id}/")
            terminal_wait_for_prompt(page)
            editor.get_by_role("treeitem", name="answers").click()
            editor.get_by_role("treeitem", name="host-kernel.txt").click()
            expect(editor_text(page, "answers/host-kernel.txt")).to_have_text(host_kernel)
            screenshots(page, "sandbox-page")
            assert refusals == []
    finally:
        sandboxes_stop(learner)


@pytest.mark.browser
@pytest.mark.docker
def test_saving_a_file_the_terminal_changed_asks_whether_to_reload_or_overwrite(stack, learner, start_sandbox):
    sandbox = start_sandbox(learner)
    run_in(sandbox, "echo first > ~/notes.txt")
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, stack, username="ada", password="pw-ada", next_path=f"/sandboxes/{sandbox.pk}/")
        terminal_wait_for_prompt(page)
        editor = page.locator("#editor")
        editor.get_by_role("treeitem", name="notes.txt").click()
        notes = editor_text(page, "notes.txt")
        expect(notes).to_have_text("first")
        page.keyboard.type("mine: ")  # the file opened with the cursor at its start
        terminal_type(page, ["echo theirs > ~/notes.txt"], done_marker="typed-change")

        editor.get_by_role("button", name="Save").click()
        message = page.locator("#editor-message")
        expect(message).to_contain_text("~/notes.txt changed on disk since you opened it")
        message.get_by_role("button", name="Reload from disk").click()
        expect(notes).to_have_text("theirs")
        expect(tab(page, "notes.txt")).not_to_contain_text("(unsaved changes)")

        notes.click()
        page.keyboard.press("Control+Home")
        page.keyboard.type("mine again ")
        terminal_type(page, ["echo theirs again > ~/notes.txt"], done_marker="typed-change-2")
        notes.click()  # Ctrl-S from the editor this time
        page.keyboard.press("Control+s")
        message.get_by_role("button", name="Overwrite").click()
        expect(editor.get_by_role("status")).to_contain_text("Saved ~/notes.txt")
    assert run_in(sandbox, "cat ~/notes.txt") == (0, "mine again theirs\n")


@pytest.mark.browser
@pytest.mark.docker
def test_an_instructor_watching_a_learner_sees_the_editor_read_only(stack, learner, instructor, start_sandbox):
    sandbox = start_sandbox(learner)
    run_in(sandbox, "echo 'print(42)' > ~/hello.py")
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, stack, username="maria", password="pw-maria", next_path=f"/sandboxes/{sandbox.pk}/")
        editor = page.locator("#editor")
        expect(editor.locator("#editor-read-only")).to_have_text("read-only")
        editor.get_by_role("treeitem", name="hello.py").click()
        code = editor_text(page, "hello.py")
        expect(code).to_have_text("print(42)")
        # Nothing that changes a file is offered, and typing into the file changes nothing.
        for name in ("Save", "New file", "New folder", "Upload a file", "Rename", "Delete"):
            expect(editor.get_by_role("button", name=name, exact=True)).to_have_count(0)
        code.click()
        page.keyboard.type("zzz")
        page.keyboard.press("Control+s")
        expect(code).to_have_text("print(42)")
        expect(tab(page, "hello.py")).not_to_contain_text("(unsaved changes)")
        expect(editor.get_by_role("button", name="Download")).to_be_visible()
        browser.audit.audit(page)
        page.screenshot(path=SHOTS / "sandbox-page-read-only-1366x768.png")


@pytest.mark.browser
@pytest.mark.docker
def test_a_learner_manages_files_from_the_tree_and_can_hide_the_editor(stack, learner, start_sandbox, tmp_path):
    sandbox = start_sandbox(learner)
    small = tmp_path / "notes.md"
    small.write_text("# notes\n")
    large = tmp_path / "big.bin"
    large.write_bytes(b"\0" * (1024 * 1024 + 1))
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, stack, username="ada", password="pw-ada", next_path=f"/sandboxes/{sandbox.pk}/")
        terminal_wait_for_prompt(page)
        editor = page.locator("#editor")
        tree = editor.get_by_role("tree")
        message = page.locator("#editor-message")

        # A new folder, selected in the tree, receives what is uploaded next.
        editor.get_by_role("button", name="New folder").click()
        page.get_by_role("dialog", name="New folder").get_by_role("textbox").fill("docs")
        page.get_by_role("button", name="Create").click()
        expect(tree.get_by_role("treeitem", name="docs")).to_have_attribute("aria-selected", "true")
        with page.expect_file_chooser() as chooser:
            editor.get_by_role("button", name="Upload a file").click()
        chooser.value.set_files(small)
        expect(tree.get_by_role("treeitem", name="notes.md")).to_be_visible()
        # The same name again: the learner is asked before the file is replaced.
        with page.expect_file_chooser() as chooser:
            editor.get_by_role("button", name="Upload a file").click()
        chooser.value.set_files(small)
        page.get_by_role("dialog", name="Replace ~/docs/notes.md?").get_by_role("button", name="Replace").click()
        expect(editor.get_by_role("status")).to_contain_text("Uploaded ~/docs/notes.md")
        # Over 1 MB is refused with a sentence, and nothing is sent.
        with page.expect_file_chooser() as chooser:
            editor.get_by_role("button", name="Upload a file").click()
        chooser.value.set_files(large)
        expect(message).to_contain_text("big.bin is larger than 1 MB")
        expect(tree.get_by_role("treeitem", name="big.bin")).to_have_count(0)

        # Renamed from the keyboard (F2), the open file's tab follows it.
        tree.get_by_role("treeitem", name="notes.md").click()
        expect(editor_text(page, "docs/notes.md")).to_have_text("# notes")
        tree.get_by_role("treeitem", name="notes.md").press("F2")
        page.get_by_role("dialog", name="Rename ~/docs/notes.md").get_by_role("textbox").fill("readme.md")
        page.keyboard.press("Enter")
        expect(tree.get_by_role("treeitem", name="readme.md")).to_be_visible()
        expect(tab(page, "readme.md")).to_have_attribute("aria-selected", "true")
        # An error from the server is shown as it is said: a name that is taken.
        editor.get_by_role("button", name="New folder").click()
        page.get_by_role("dialog", name="New folder").get_by_role("textbox").fill("~/docs")
        page.get_by_role("button", name="Create").click()
        expect(message).to_contain_text("~/docs already exists.")

        # Closing a tab with unsaved changes asks first.
        editor_text(page, "docs/readme.md").click()
        page.keyboard.type("draft ")
        editor.get_by_role("button", name="Close the file").click()
        page.get_by_role("dialog", name="Close readme.md?").get_by_role("button", name="Cancel").click()
        expect(tab(page, "readme.md")).to_contain_text("(unsaved changes)")
        editor.get_by_role("button", name="Close the file").click()
        page.get_by_role("button", name="Close without saving").click()
        expect(tab(page, "readme.md")).to_have_count(0)

        # Deleting a folder says that what it holds goes too.
        tree.get_by_role("treeitem", name="docs").click()
        editor.get_by_role("button", name="Delete").click()
        confirm = page.get_by_role("dialog", name="Delete ~/docs?")
        expect(confirm).to_contain_text("deleted with everything in it")
        confirm.get_by_role("button", name="Delete").click()
        expect(tree.get_by_role("treeitem", name="docs")).to_have_count(0)
        browser.audit.audit(page)

        # The toggle gives the terminal the editor's height, and the choice outlasts a reload.
        terminal_height = page.locator(".sc-terminal-card").bounding_box()["height"]
        page.get_by_role("button", name="Editor", exact=True).click()
        expect(editor).to_be_hidden()
        expect(page.get_by_role("button", name="Editor", exact=True)).to_have_attribute("aria-pressed", "false")
        assert page.locator(".sc-terminal-card").bounding_box()["height"] > terminal_height * 1.8
        page.reload()
        terminal_wait_for_prompt(page)
        expect(editor).to_be_hidden()
        page.get_by_role("button", name="Editor", exact=True).click()
        expect(editor).to_be_visible()
