"""`aws logs tail` on the CLI v1 the workstations have: the plugin, enabled in an AWS config file as a learner's
would be, run as the real `aws` command against the live server; and its pure parts on their own."""
from __future__ import annotations

import importlib.util
import io
import os
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sandbox.awsapi import identity
from sandbox.logs import services

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "sandbox" / "logs" / "awscli_plugin"
AWS = Path(sys.executable).with_name("aws")
GROUP = "/aws/lambda/hello"


def load_plugin():
    spec = importlib.util.spec_from_file_location("sandcloud_logs_tail", PLUGIN_DIR / "sandcloud_logs_tail.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = load_plugin()


# --- the pure parts -----------------------------------------------------------------------------------------------

NOW = datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("since, seconds_before", [("10m", 600), ("30s", 30), ("1h", 3600), ("2d", 172800),
                                                   ("1w", 604800)])
def test_since_takes_a_number_and_a_unit_before_now(since, seconds_before):
    assert plugin.since_to_millis(since, now=NOW) == int(NOW.timestamp() * 1000) - seconds_before * 1000


def test_since_takes_a_timestamp_utc_when_it_names_no_zone():
    assert plugin.since_to_millis("2026-01-31T11:00:00Z", now=NOW) == int(NOW.timestamp() * 1000) - 3_600_000
    assert plugin.since_to_millis("2026-01-31T11:00:00", now=NOW) == int(NOW.timestamp() * 1000) - 3_600_000


def test_since_refuses_what_it_cannot_read_with_a_sentence():
    with pytest.raises(ValueError) as caught:
        plugin.since_to_millis("yesterday-ish", now=NOW)
    assert "--since must be a number and one unit" in str(caught.value)


EVENT = {"timestamp": 1_769_860_800_123, "logStreamName": "2026/01/31/[$LATEST]abc", "message": '{"a": 1}\n',
         "eventId": "1", "ingestionTime": 1_769_860_800_200}


def test_the_detailed_format_is_v2s_timestamp_stream_and_message():
    line = plugin.EventFormatter(io.StringIO(), "detailed", color=False).line(EVENT)

    assert line == '2026-01-31T12:00:00.123000+00:00 2026/01/31/[$LATEST]abc {"a": 1}\n'


def test_the_short_format_is_a_short_timestamp_and_the_message():
    assert plugin.EventFormatter(io.StringIO(), "short", color=False).line(EVENT) == '2026-01-31T12:00:00 {"a": 1}\n'


def test_the_json_format_pretty_prints_json_messages():
    line = plugin.EventFormatter(io.StringIO(), "json", color=False).line(EVENT)

    assert line == '2026-01-31T12:00:00.123000+00:00 2026/01/31/[$LATEST]abc \n{\n    "a": 1\n}\n'


def test_colour_paints_the_timestamp_and_the_stream_only():
    line = plugin.EventFormatter(io.StringIO(), "detailed", color=True).line(EVENT)

    assert line.startswith("\x1b[32m2026-01-31T12:00:00.123000+00:00\x1b[0m \x1b[36m2026/01/31/[$LATEST]abc\x1b[0m ")


class FakeLogs:
    """Answers FilterLogEvents from a list that grows between polls (a unit test of the follow loop alone)."""

    def __init__(self, polls):
        self.polls, self.calls = polls, []

    def filter_log_events(self, **kwargs):
        self.calls.append(kwargs)
        events = self.polls[min(len(self.calls), len(self.polls)) - 1]
        return {"events": [e for e in events if e["timestamp"] >= kwargs["startTime"]]}


def test_following_prints_each_event_once_and_catches_a_late_one():
    def event(event_id, timestamp):
        return {"eventId": event_id, "timestamp": timestamp, "logStreamName": "s", "message": event_id}

    first = [event("a", 100_000), event("b", 105_000)]
    # The next poll returns b again (it is within the look-back) and c, stored late though older than b.
    second = first + [event("c", 101_000)]
    client, out, slept = FakeLogs([first, second]), io.StringIO(), []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        plugin.TailCommand._follow(client, {"logGroupName": "g", "startTime": 0},
                                   plugin.EventFormatter(out, "short", color=False), sleep=sleep)

    assert [line.split(" ", 1)[1] for line in out.getvalue().splitlines()] == ["a", "b", "c"]
    assert client.calls[1]["startTime"] == 105_000 - plugin.FOLLOW_LOOKBACK_MS
    assert slept == [plugin.POLL_SECONDS] * 2


# --- the real `aws` command ---------------------------------------------------------------------------------------

def cli_env(tmp_path: Path, key, secret, *, plugin_enabled: bool = True) -> dict:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-east-1\n"
                      + ("[plugins]\nsandcloud_logs_tail = sandcloud_logs_tail\n" if plugin_enabled else ""))
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": key.access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "PYTHONPATH": str(PLUGIN_DIR), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def cli(live_server, learner, tmp_path):
    key, secret = identity.access_key_create(user=learner)

    def run(*args, plugin_enabled=True, timeout=60):
        return subprocess.run([str(AWS), *args, "--endpoint-url", live_server.url + "/aws"],
                              env=cli_env(tmp_path, key, secret, plugin_enabled=plugin_enabled),
                              capture_output=True, text=True, timeout=timeout)

    def start(*args):
        # Ctrl-C as a terminal delivers it: a suite started in the background (`make test &`) runs with SIGINT
        # ignored, which a child Python would inherit and never raise KeyboardInterrupt for.
        return subprocess.Popen([str(AWS), *args, "--endpoint-url", live_server.url + "/aws"],
                                env=cli_env(tmp_path, key, secret), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    run.start = start
    return run


@pytest.fixture
def hello(account):
    """ada's function log: two execution environments, written as the functions app writes them."""
    now = services.now_ms()
    first = services.log_stream_ensure(account=account, group_name=GROUP, stream_name="2026/01/31/[$LATEST]aaa")
    second = services.log_stream_ensure(account=account, group_name=GROUP, stream_name="2026/01/31/[$LATEST]bbb")
    services.log_events_put(stream=first, events=[(now - 7_200_000, "two hours ago"), (now - 3000, "START one"),
                                                  (now - 1000, "[ERROR] boom")])
    services.log_events_put(stream=second, events=[(now - 2000, "START two")])
    return {"first": first, "second": second, "now": now}


def read_until(process, wanted: list[str], timeout: float) -> str:
    """What the process printed, read until every wanted text appeared (or the time ran out)."""
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and not all(text.encode() in output for text in wanted):
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            output += chunk
    return output.decode()


@pytest.mark.django_db(transaction=True)
def test_the_cli_v1_has_no_tail_of_its_own(cli):
    done = cli("logs", "tail", GROUP, plugin_enabled=False)

    assert done.returncode != 0 and "Invalid choice" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_tail_prints_the_last_ten_minutes_of_every_stream_in_time_order(cli, hello):
    done = cli("logs", "tail", GROUP)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ", 2)[1:] for line in lines] == [["2026/01/31/[$LATEST]aaa", "START one"],
                                                         ["2026/01/31/[$LATEST]bbb", "START two"],
                                                         ["2026/01/31/[$LATEST]aaa", "[ERROR] boom"]]
    stamp = datetime.fromtimestamp((hello["now"] - 3000) / 1000, tz=timezone.utc)
    assert lines[0].startswith(stamp.isoformat(timespec="microseconds") + " ")


@pytest.mark.django_db(transaction=True)
def test_tail_takes_since_a_filter_pattern_and_streams(cli, hello):
    since = cli("logs", "tail", GROUP, "--since", "3h", "--format", "short")
    errors = cli("logs", "tail", GROUP, "--filter-pattern", "ERROR")
    one_stream = cli("logs", "tail", GROUP, "--log-stream-names", "2026/01/31/[$LATEST]bbb")
    by_prefix = cli("logs", "tail", GROUP, "--log-stream-name-prefix", "2026/01/31/[$LATEST]a")

    assert [line.split(" ", 1)[1] for line in since.stdout.splitlines()] == [
        "two hours ago", "START one", "START two", "[ERROR] boom"]
    assert [line.split(" ", 2)[2] for line in errors.stdout.splitlines()] == ["[ERROR] boom"]
    assert [line.split(" ", 2)[2] for line in one_stream.stdout.splitlines()] == ["START two"]
    assert [line.split(" ", 2)[2] for line in by_prefix.stdout.splitlines()] == ["START one", "[ERROR] boom"]


@pytest.mark.django_db(transaction=True)
def test_tail_of_a_missing_group_says_so_in_awss_words(cli, account):
    done = cli("logs", "tail", "/aws/lambda/nope")

    assert done.returncode != 0
    assert "ResourceNotFoundException" in done.stderr and "The specified log group does not exist." in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.django_db(transaction=True)
def test_follow_prints_new_events_as_they_come_once_each_and_ends_on_ctrl_c(cli, hello):
    process = cli.start("logs", "tail", GROUP, "--follow")
    try:
        # Given the follower has printed what was there
        assert "[ERROR] boom" in read_until(process, ["[ERROR] boom"], timeout=30)

        # When the function writes more, one line in each stream
        services.log_events_put(stream=hello["second"], events=[(services.now_ms(), "END two")])
        services.log_events_put(stream=hello["first"], events=[(services.now_ms(), "END one")])
        later = read_until(process, ["END two", "END one"], timeout=15)
        # and a few more polls go by
        later += read_until(process, ["never printed"], timeout=2.5)

        # Then each new line appears, once, and nothing already shown comes again
        assert later.count("END two") == 1 and later.count("END one") == 1
        assert "START one" not in later and "[ERROR] boom" not in later
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=60)  # generous: a loaded machine starts and stops the CLI slowly
        stderr = process.stderr.read().decode()
    assert returncode == 0 and "Traceback" not in stderr
