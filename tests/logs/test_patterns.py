"""Filter patterns: terms, quoted phrases, alternatives and exclusions, case-sensitive, as CloudWatch reads them."""
from __future__ import annotations

import pytest

from sandbox.logs.errors import InvalidParameter
from sandbox.logs.patterns import filter_pattern_parse

LINES = ["START RequestId: 1 Version: $LATEST", "[ERROR] Task timed out after 3.00 seconds",
         "WARN disk almost full", "error in lower case", "END RequestId: 1"]


def matching(pattern: str) -> list[str]:
    parsed = filter_pattern_parse(pattern)
    return [line for line in LINES if parsed.matches(line)]


def test_an_empty_pattern_matches_every_event():
    assert matching("") == LINES
    assert matching("   ") == LINES
    assert filter_pattern_parse(None).matches_everything


def test_a_term_matches_case_sensitively():
    assert matching("ERROR") == ["[ERROR] Task timed out after 3.00 seconds"]


def test_every_term_must_appear():
    assert matching("RequestId START") == ["START RequestId: 1 Version: $LATEST"]


def test_a_quoted_phrase_matches_as_a_whole():
    assert matching('"Task timed out"') == ["[ERROR] Task timed out after 3.00 seconds"]
    assert matching('"timed after"') == []


def test_question_marks_make_alternatives():
    assert matching("?ERROR ?WARN") == ["[ERROR] Task timed out after 3.00 seconds", "WARN disk almost full"]


def test_a_minus_excludes_a_term():
    assert matching("RequestId -END") == ["START RequestId: 1 Version: $LATEST"]
    assert matching('-"RequestId"') == LINES[1:4]


@pytest.mark.parametrize("pattern", ['{ $.level = "ERROR" }', "[ip, user, status]", "%ERR.R%"])
def test_json_space_delimited_and_regex_patterns_are_refused_with_a_sentence(pattern):
    with pytest.raises(InvalidParameter) as caught:
        filter_pattern_parse(pattern)
    assert caught.value.code == "InvalidParameterException"
    assert "Sandcloud does not support" in caught.value.message


@pytest.mark.parametrize("pattern", ['"never closed', "ERROR ?", "-"])
def test_a_broken_pattern_is_an_invalid_parameter(pattern):
    with pytest.raises(InvalidParameter) as caught:
        filter_pattern_parse(pattern)
    assert caught.value.message.startswith("Invalid filter pattern")
