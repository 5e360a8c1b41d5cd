"""Reading an instructor's roster (a pasted list or a CSV of usernames, optional e-mails) into per-line answers."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower

from accounts.signup import USERNAME_MAX_LENGTH, USERNAME_MIN_LENGTH, username_validator

MAX_LINES = 2000
# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_safe(value):
    """A value as a spreadsheet should show it: text that would start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


@dataclass
class RosterLine:
    number: int
    username: str
    email: str = ""
    problem: str = ""  # empty: the line can be added


class RosterTooLong(ValueError):
    pass


def roster_read(*, text: str) -> list[RosterLine]:
    """One RosterLine per non-empty line, with the problem that keeps it out said in plain words. A first line of
    exactly `username[,email]` is a header and skipped. Usernames are compared in lowercase, as accounts store them."""
    rows = list(csv.reader(io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n"))))
    if len(rows) > MAX_LINES:
        raise RosterTooLong(f"The list has {len(rows):,} lines; add at most {MAX_LINES:,} at a time.")
    lines: list[RosterLine] = []
    for number, cells in enumerate(rows, start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower() == "username":
            continue
        username = cells[0].lower() if not cells[0].startswith(FORMULA_STARTS) else cells[0]
        line = RosterLine(number=number, username=username, email=cells[1] if len(cells) > 1 else "")
        line.problem = _problem(line, extra=cells[2:])
        lines.append(line)
    _mark_duplicates(lines)
    _mark_taken(lines)
    return lines


def _problem(line: RosterLine, *, extra: list[str]) -> str:
    raw = [line.username, line.email, *extra]
    if any(cell[:1] in FORMULA_STARTS for cell in raw if cell):
        return "refused: a cell starts with = + - or @, which a spreadsheet would run as a formula."
    if any(cell for cell in extra):
        return "refused: expected at most two cells, a username and an e-mail address."
    if " " in line.username:
        return "refused: a username cannot contain spaces."
    if len(line.username) < USERNAME_MIN_LENGTH:
        return f"refused: a username needs at least {USERNAME_MIN_LENGTH} characters."
    if len(line.username) > USERNAME_MAX_LENGTH:
        return f"refused: a username can be at most {USERNAME_MAX_LENGTH} characters."
    try:
        username_validator(line.username)
    except ValidationError:
        return "refused: a username may hold only the letters a–z, digits and . _ - (no accents), and starts with " \
               "a letter or digit."
    if line.email:
        try:
            validate_email(line.email)
        except ValidationError:
            return f"refused: “{line.email}” is not an e-mail address."
    return ""


def _mark_duplicates(lines: list[RosterLine]) -> None:
    first_seen: dict[str, int] = {}
    for line in lines:
        if line.problem:
            continue
        if line.username in first_seen:
            line.problem = f"refused: the same username as line {first_seen[line.username]}."
        else:
            first_seen[line.username] = line.number


def _mark_taken(lines: list[RosterLine]) -> None:
    wanted = [line.username for line in lines if not line.problem]
    taken = set()
    User = get_user_model()
    for start in range(0, len(wanted), 500):  # SQLite allows only so many parameters in one IN (...)
        taken |= set(User.objects.annotate(lowered=Lower("username")).filter(lowered__in=wanted[start:start + 500])
                     .values_list("lowered", flat=True))
    for line in lines:
        if not line.problem and line.username in taken:
            line.problem = "refused: an account with this username exists already; that learner can join with " \
                           "the cohort's invite code."
