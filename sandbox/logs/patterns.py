"""Filter patterns for unstructured log events, as FilterLogEvents and `aws logs tail --filter-pattern` read them.

Supported: an empty pattern (every event), terms (`ERROR` — every term must appear), quoted phrases (`"Task timed
out"`), alternatives (`?ERROR ?WARN` — at least one), and exclusions (`ERROR -healthcheck`). Matching is
case-sensitive, as CloudWatch's is. JSON (`{ $.level = ... }`), space-delimited (`[ip, user, ...]`) and regular
expression (`%...%`) patterns are refused with a sentence saying so rather than misread.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db.models import Q

from .errors import InvalidParameter


@dataclass(frozen=True)
class FilterPattern:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not (self.required or self.optional or self.excluded)

    def matches(self, message: str) -> bool:
        return (all(term in message for term in self.required)
                and (not self.optional or any(term in message for term in self.optional))
                and not any(term in message for term in self.excluded))

    def prefilter(self) -> Q:
        """A database condition every matching event meets (more may meet it: SQLite's LIKE ignores case), so
        that only likely matches are read; `matches` has the last word."""
        condition = Q()
        for term in self.required:
            condition &= Q(message__contains=term)
        if self.optional:
            condition &= reduce(or_, (Q(message__contains=term) for term in self.optional))
        return condition


_UNSUPPORTED = {
    "{": "JSON filter patterns",
    "[": "space-delimited filter patterns",
    "%": "regular expression filter patterns",
}


def filter_pattern_parse(text: str | None) -> FilterPattern:
    """The pattern's terms; raises InvalidParameter for a pattern Sandcloud cannot read."""
    text = (text or "").strip()
    if not text:
        return FilterPattern()
    if text[0] in _UNSUPPORTED:
        raise InvalidParameter(f"Sandcloud does not support {_UNSUPPORTED[text[0]]} yet; use terms, \"quoted "
                               f"phrases\", ?alternatives and -exclusions.")
    required, optional, excluded = [], [], []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        kind = required
        if text[position] in "?-":
            kind = optional if text[position] == "?" else excluded
            position += 1
        if position < len(text) and text[position] == '"':
            end = text.find('"', position + 1)
            if end == -1:
                raise InvalidParameter(f"Invalid filter pattern: the quotation mark at position {position + 1} is "
                                       f"never closed.")
            term, position = text[position + 1:end], end + 1
        else:
            end = position
            while end < len(text) and not text[end].isspace():
                end += 1
            term, position = text[position:end], end
        if not term:
            raise InvalidParameter("Invalid filter pattern: a ? or - must be followed by a term.")
        kind.append(term)
    return FilterPattern(tuple(required), tuple(optional), tuple(excluded))
