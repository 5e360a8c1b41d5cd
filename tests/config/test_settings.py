"""Settings that guard the browser: HTTPS behind the TLS proxy, and a Content-Security-Policy on every page."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from config.processes import database_url

# Runs in a fresh process so the settings are read from its environment, as at a real start; signs in as ada over the
# proxy's HTTPS and reports what the browser would be told.
BROWSER = r"""
import json, os
import django

os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
client = Client()
proxied = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "192.0.2.10"}
page = client.get("/accounts/login/", **proxied)
signed_in = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada"}, **proxied)
plain = Client().get("/accounts/login/")
print(json.dumps({
    "hsts": page.headers.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(page.cookies["csrftoken"]["secure"]),
    "signed_in": signed_in.status_code,
    "session_cookie_secure": bool(signed_in.cookies["sessionid"]["secure"]),
    "plain_hsts": plain.headers.get("Strict-Transport-Security"),
}))
"""


def browser_reports(*environments: dict[str, str]) -> list[dict]:
    """Runs BROWSER once per environment, all at once, on this test's database."""
    inherited = {name: value for name, value in os.environ.items() if name != "SANDCLOUD_HTTPS"}
    processes = [subprocess.Popen([sys.executable, "-c", BROWSER], cwd=settings.BASE_DIR, text=True,
                                  env={**inherited, "DATABASE_URL": database_url(), **environment},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for environment in environments]
    reports = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        reports.append(json.loads(stdout.splitlines()[-1]))
    return reports


@pytest.mark.django_db(transaction=True)
def test_behind_the_tls_proxy_cookies_travel_only_over_https_and_browsers_keep_to_it(learner):
    # When the site runs with SANDCLOUD_HTTPS=1 and the proxy forwards an HTTPS request (and, for comparison, without)
    proxied, direct = browser_reports({"SANDCLOUD_HTTPS": "1"}, {})

    # Then the learner signs in, both cookies are marked Secure, and the browser is told to use only HTTPS for a year
    assert proxied["signed_in"] == 302
    assert proxied["csrf_cookie_secure"] and proxied["session_cookie_secure"]
    assert proxied["hsts"] == "max-age=31536000"
    # while a plain-HTTP request (not from the proxy) is not treated as HTTPS
    assert proxied["plain_hsts"] is None
    # and without SANDCLOUD_HTTPS the site still works over plain HTTP, as `make run` serves it
    assert direct["signed_in"] == 302
    assert not direct["csrf_cookie_secure"] and not direct["session_cookie_secure"]
    assert direct["hsts"] is None


def script_policy(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("script-src"))


@pytest.mark.django_db
def test_every_page_sends_a_policy_that_runs_only_the_sites_own_scripts(learner):
    client = Client()
    pages = [client.get("/accounts/login/")]
    client.force_login(learner)
    pages += [client.get(path) for path in ("/", "/labs/", "/lessons/", "/cohorts/", "/no-such-page/")]

    for page in pages:
        assert script_policy(page) == "script-src 'self' 'wasm-unsafe-eval'", page.request["PATH_INFO"]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


TEMPLATE_FOLDERS = [Path(settings.BASE_DIR) / "templates",
                    *sorted(Path(settings.BASE_DIR).glob("*/templates")),
                    *sorted(Path(settings.BASE_DIR).glob("sandbox/*/templates"))]


def test_no_template_holds_a_script_the_policy_would_block():
    # Inline scripts, inline event handlers and htmx expressions (evaluated with new Function) all need
    # 'unsafe-inline' or 'unsafe-eval', which the policy does not give: the page would silently lose them.
    blocked = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>"  # a script without src
                         r"|\son[a-z]+\s*=|hx-on"  # inline event handlers
                         r"|hx-vals=['\"]js:|hx-trigger=['\"][^'\"]*\[")  # htmx's JavaScript values and filters
    found = [f"{path.relative_to(settings.BASE_DIR)}: {match.group(0)}"
             for folder in TEMPLATE_FOLDERS for path in sorted(folder.rglob("*.html"))
             for match in blocked.finditer(path.read_text())]
    assert found == []
