"""The Docker page in Chromium: the learner's objects and quota at a laptop's size, within the CSP."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORT, chromium, csp_watch, sign_in
from tests.dockerproxy.conftest import ada_docker, proxy_dir  # noqa: F401 - fixtures

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_the_docker_page_shows_containers_images_and_quota(stack, ada_docker, tmp_path):  # noqa: F811
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCMD [\"sleep\", \"60\"]\n")
    ada_docker.ok("build", "-q", "-t", "hello:1", str(tmp_path))
    ada_docker.ok("run", "-d", "--name", "web", "--memory", "128m", "hello:1")
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        refusals = csp_watch(page)
        sign_in(page, stack, username="ada", password="pw-ada", next_path="/docker/")
        expect(page.get_by_role("heading", name="Your Docker")).to_be_visible()
        expect(page.locator("#containers")).to_contain_text("web")
        expect(page.locator("#images")).to_contain_text("hello:1")
        expect(page.get_by_role("progressbar", name="Containers", exact=True)).to_have_attribute("aria-valuenow", "20")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "docker-page.png"), full_page=True)
        assert refusals == []
