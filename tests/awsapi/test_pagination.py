"""Pagination tokens are opaque, tied to their listing, and pages are keyed on items rather than offsets."""
from __future__ import annotations

import pytest

from sandbox.awsapi import pagination
from sandbox.awsapi.errors import AwsError

NAMES = [f"fn{i:02d}" for i in range(5)]


def pages(items, limit, scope="lambda:ListFunctions:123456789012"):
    token, seen = None, []
    while True:
        page = pagination.paginate(items, token=token, limit=limit, scope=scope, key=lambda n: n)
        seen.append(page.items)
        token = page.next_token
        if token is None:
            return seen


def test_pages_cover_every_item_once_and_the_last_has_no_token():
    assert pages(NAMES, 2) == [["fn00", "fn01"], ["fn02", "fn03"], ["fn04"]]
    assert pages(NAMES, 5) == [NAMES]
    assert pages([], 3) == [[]]


def test_a_token_reveals_nothing_readable():
    page = pagination.paginate(NAMES, token=None, limit=2, scope="s", key=lambda n: n)
    assert "fn01" not in page.next_token


def test_an_item_deleted_between_calls_shifts_nothing():
    first = pagination.paginate(NAMES, token=None, limit=2, scope="s", key=lambda n: n)
    after_delete = [n for n in NAMES if n != "fn00"]
    second = pagination.paginate(after_delete, token=first.next_token, limit=2, scope="s", key=lambda n: n)
    assert second.items == ["fn02", "fn03"]


def test_a_forged_or_foreign_token_is_refused():
    token = pagination.paginate(NAMES, token=None, limit=2, scope="logs:A:1", key=lambda n: n).next_token
    with pytest.raises(AwsError) as caught:
        pagination.paginate(NAMES, token=token, limit=2, scope="logs:A:2", key=lambda n: n)
    assert caught.value.code == "InvalidParameterValueException"
    with pytest.raises(AwsError):
        pagination.paginate(NAMES, token=token[:-3] + "abc", limit=2, scope="logs:A:1", key=lambda n: n)
    mine = AwsError("InvalidParameterException", "The specified nextToken is invalid.")
    with pytest.raises(AwsError) as caught:
        pagination.paginate(NAMES, token="junk", limit=2, scope="logs:A:1", key=lambda n: n, invalid_token=mine)
    assert caught.value is mine


def test_page_size_defaults_and_caps():
    assert pagination.page_size(None, default=50) == 50
    assert pagination.page_size(10, default=50) == 10
    assert pagination.page_size(1000, default=50, maximum=100) == 100
