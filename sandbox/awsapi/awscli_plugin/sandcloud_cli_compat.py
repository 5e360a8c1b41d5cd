"""An awscli v1 plugin: accepts v2's global `--cli-binary-format`, so commands copied from AWS's documentation (written
for v2) run as typed on the workstation's v1 CLI.

v1 already sends a blob given on the command line as its raw bytes, which is what `raw-in-base64-out` asks v2 to do;
so that value changes nothing. `base64` (v2's default) would have v2 decode the argument first: v1 cannot be made to,
so the plugin says so rather than sending something else than the learner meant. Imports only awscli.
"""
from __future__ import annotations

import sys

from awscli.arguments import CustomArgument

CHOICES = ("raw-in-base64-out", "base64")


def awscli_initialize(cli) -> None:
    cli.register("building-top-level-params", _add_binary_format)
    cli.register("top-level-args-parsed", _check_binary_format)


def _add_binary_format(argument_table, **_) -> None:
    argument_table["cli-binary-format"] = CustomArgument(
        "cli-binary-format", choices=list(CHOICES), dest="cli_binary_format",
        help_text="How blob arguments are read (v2's option; this v1 CLI always sends them as given).")


def _check_binary_format(parsed_args, **_) -> None:
    if getattr(parsed_args, "cli_binary_format", None) == "base64":
        sys.stderr.write("note: this aws CLI (v1) sends blob arguments such as --payload as they are written; "
                         "--cli-binary-format base64 is not applied. Pass raw JSON with raw-in-base64-out.\n")
