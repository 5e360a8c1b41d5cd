"""Pagination as AWS does it: opaque `NextToken` / `NextMarker` strings and page sizes bounded by the model's limits."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core import signing

from .errors import AwsError

_SALT = "sandcloud.awsapi.pagination"


@dataclass
class Page:
    items: list
    next_token: str | None  # None on the last page: AWS leaves NextToken / NextMarker out then


def token_encode(position: str | int, *, scope: str) -> str:
    """An opaque, tamper-proof token for the position after the last item returned; `scope` ties it to one listing
    (e.g. "logs:DescribeLogGroups:<account>") so a token from one call cannot be replayed in another."""
    return signing.dumps({"p": position, "s": scope}, salt=_SALT, compress=True)


def token_decode(token: str, *, scope: str, error: AwsError) -> str | int:
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise error from None
    if not isinstance(data, dict) or data.get("s") != scope:
        raise error
    return data["p"]


def page_size(requested: int | None, *, default: int, maximum: int | None = None) -> int:
    """The number of items to return: what was asked for (the parser already held it to the model's min/max), else
    the service's default, and never more than `maximum` where the service caps a page below the model's limit."""
    size = default if requested is None else int(requested)
    return min(size, maximum) if maximum else size


def paginate(items: Sequence, *, token: str | None, limit: int, scope: str, key: Callable[[object], str | int],
             invalid_token: AwsError | None = None) -> Page:
    """One page of `items` (already sorted by `key`, which must be unique): those after the token's position.

    Keyed on the item rather than an offset, so an item created or deleted between calls shifts nothing.
    """
    error = invalid_token or AwsError("InvalidParameterValueException", "The provided pagination token is invalid.")
    start = 0
    if token:
        after = token_decode(token, scope=scope, error=error)
        start = next((i for i, item in enumerate(items) if key(item) > after), len(items))
    chunk = list(items[start:start + limit])
    more = start + limit < len(items)
    return Page(chunk, token_encode(key(chunk[-1]), scope=scope) if more and chunk else None)
