"""`aws logs tail` for the AWS CLI v1, which has no such command (it came with v2): a plugin that adds it, as v2 has it.

    aws logs tail GROUP [--follow] [--since 10m|1h|2d|1w|2026-01-31T12:00:00Z] [--format detailed|short|json]
                        [--filter-pattern PATTERN] [--log-stream-names NAME ...] [--log-stream-name-prefix PREFIX]

It reads the group with FilterLogEvents, page after page. With --follow it asks again every second for what came
since, and never prints an event twice (it remembers the ids of the events it printed lately); Ctrl-C ends it.

The CLI v1 imports a plugin by module name, so this file's directory must be on the CLI's Python path (PYTHONPATH,
or a .pth file in its site-packages), and the AWS config file (~/.aws/config, or $AWS_CONFIG_FILE) must name it:

    [plugins]
    sandcloud_logs_tail = sandcloud_logs_tail

(v1 has no `cli_legacy_plugin_path`: it would try to import that directory as a module and fail.) This module
imports only the standard library, botocore and awscli, so it runs in any v1 installation.
"""
from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timedelta, timezone

from awscli.customizations.commands import BasicCommand
from botocore.utils import parse_timestamp

# How often --follow asks for new events.
POLL_SECONDS = 1.0
# --follow asks again from this long before the newest event it printed, so that a line stored late (a function
# writes its log when an invocation ends) is still caught when a later line of another stream came first. v2 asks
# from the newest event itself and misses such lines.
FOLLOW_LOOKBACK_MS = 10_000

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_GREEN, _CYAN, _RESET = "\x1b[32m", "\x1b[36m", "\x1b[0m"


def awscli_initialize(cli) -> None:
    """What the CLI calls when it loads the plugin: adds `tail` to the `logs` commands."""
    cli.register("building-command-table.logs", _add_tail_command)


def _add_tail_command(command_table, session, **kwargs) -> None:
    command_table["tail"] = TailCommand(session)


def since_to_millis(since: str, now: datetime | None = None) -> int:
    """`--since`: a number and one unit (30s, 10m, 1h, 2d, 1w) before now, or a timestamp (ISO 8601; UTC when it
    names no zone)."""
    now = now or datetime.now(timezone.utc)
    relative = _RELATIVE.match(since.strip())
    if relative:
        moment = now - timedelta(seconds=int(relative[1]) * _UNIT_SECONDS[relative[2]])
    else:
        try:
            moment = parse_timestamp(since)
        except (ValueError, TypeError, OverflowError):
            raise ValueError(f"--since must be a number and one unit (s, m, h, d, w), e.g. 10m, or a timestamp "
                             f"such as 2026-01-31T12:00:00Z; got {since!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


class EventFormatter:
    """Prints events as v2's `aws logs tail` does, one line each (the json format may span several)."""

    def __init__(self, output, style: str, color: bool):
        self._output, self._style, self._color = output, style, color

    def _paint(self, text: str, color: str) -> str:
        return f"{color}{text}{_RESET}" if self._color else text

    def line(self, event: dict) -> str:
        moment = datetime.fromtimestamp(event["timestamp"] / 1000, tz=timezone.utc)
        message = event["message"]
        if self._style == "short":
            return f"{self._paint(moment.strftime('%Y-%m-%dT%H:%M:%S'), _GREEN)} {message}".rstrip() + "\n"
        stamp = moment.isoformat(timespec="microseconds") if self._style == "detailed" else moment.isoformat()
        if self._style == "json":
            try:
                message = "\n" + json.dumps(json.loads(message), indent=4)
            except ValueError:
                pass
        return f"{self._paint(stamp, _GREEN)} {self._paint(event['logStreamName'], _CYAN)} {message}".rstrip() + "\n"

    def write(self, event: dict) -> None:
        self._output.write(self.line(event))


class TailCommand(BasicCommand):
    NAME = "tail"
    DESCRIPTION = ("Tails the logs of a CloudWatch Logs group: by default the events of all its streams from the "
                   "past ten minutes. With --follow, keeps printing new events until Control-C. (Sandcloud's plugin "
                   "for the AWS CLI v1; v2 has this command built in.)")
    ARG_TABLE = [
        {"name": "group_name", "positional_arg": True, "help_text": "The name of the CloudWatch Logs group."},
        {"name": "since", "default": "10m",
         "help_text": "From when to show events: a number and one unit (s, m, h, d, w) before now, e.g. 10m "
                      "(the default) or 2h, or an ISO 8601 timestamp."},
        {"name": "follow", "action": "store_true", "default": False,
         "help_text": "Keep polling for new events (every second) until Control-C."},
        {"name": "format", "default": "detailed", "choices": ["detailed", "short", "json"],
         "help_text": "detailed (the default): timestamp with microseconds and zone, stream name, message; short: "
                      "a shorter timestamp and the message; json: like detailed, JSON messages pretty-printed."},
        {"name": "filter-pattern",
         "help_text": "Only events matching this filter pattern: terms, \"quoted phrases\", ?alternatives, "
                      "-exclusions."},
        {"name": "log-stream-names", "nargs": "+",
         "help_text": "Only events of these streams (not with --log-stream-name-prefix)."},
        {"name": "log-stream-name-prefix",
         "help_text": "Only events of streams whose names start with this (not with --log-stream-names)."},
    ]

    def _run_main(self, parsed_args, parsed_globals) -> int:
        client = self._session.create_client("logs", region_name=parsed_globals.region,
                                             endpoint_url=parsed_globals.endpoint_url,
                                             verify=parsed_globals.verify_ssl)
        request = {"logGroupName": parsed_args.group_name, "interleaved": True,
                   "startTime": since_to_millis(parsed_args.since)}
        if parsed_args.filter_pattern is not None:
            request["filterPattern"] = parsed_args.filter_pattern
        if parsed_args.log_stream_names is not None:
            request["logStreamNames"] = parsed_args.log_stream_names
        if parsed_args.log_stream_name_prefix is not None:
            request["logStreamNamePrefix"] = parsed_args.log_stream_name_prefix
        if hasattr(sys.stdout, "reconfigure"):
            # A message the terminal's encoding cannot show is shown with "?" rather than ending the command.
            sys.stdout.reconfigure(errors="replace")
        formatter = EventFormatter(sys.stdout, parsed_args.format, self._use_color(parsed_globals))
        try:
            if parsed_args.follow:
                self._follow(client, request, formatter)
            else:
                for page in client.get_paginator("filter_log_events").paginate(**request):
                    for event in page["events"]:
                        formatter.write(event)
            sys.stdout.flush()
        except KeyboardInterrupt:
            # Control-C is how --follow is meant to end: no traceback, no error status.
            return 0
        except BrokenPipeError:
            # The reader went away (`aws logs tail g | head`): nothing left to do.
            return 0
        return 0

    @staticmethod
    def _use_color(parsed_globals) -> bool:
        choice = getattr(parsed_globals, "color", "auto")
        if choice == "on":
            return True
        if choice == "off":
            return False
        try:
            return sys.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    @staticmethod
    def _follow(client, request: dict, formatter: EventFormatter, sleep=time.sleep) -> None:
        """Prints what matches, then every POLL_SECONDS what came since; an event is printed once only."""
        since = request["startTime"]
        printed: dict[str, int] = {}  # event id -> timestamp, for the events that a later poll can return again
        while True:
            call = dict(request, startTime=since)
            while True:
                page = client.filter_log_events(**call)
                for event in page["events"]:
                    if event["eventId"] in printed:
                        continue
                    printed[event["eventId"]] = event["timestamp"]
                    formatter.write(event)
                if not page.get("nextToken"):
                    break
                call["nextToken"] = page["nextToken"]
            sys.stdout.flush()
            if printed:
                since = max(since, max(printed.values()) - FOLLOW_LOOKBACK_MS)
                # Ids of events before `since` can never come back: forget them, so memory stays bounded.
                printed = {event_id: stamp for event_id, stamp in printed.items() if stamp >= since}
            sleep(POLL_SECONDS)
