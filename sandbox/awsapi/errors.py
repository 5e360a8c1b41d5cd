"""An AWS error as the service would send it: the code and message AWS uses, the HTTP status, who is at fault."""
from __future__ import annotations


class AwsError(Exception):
    """Raised anywhere below the edge endpoint; the protocol's serialiser turns it into that protocol's error shape.

    `code` and `message` are AWS's own words (e.g. "InvalidSignatureException", "The request signature we calculated
    does not match the signature you provided. ..."), so a learner who searches them finds AWS's documentation.
    """

    def __init__(self, code: str, message: str, *, status: int = 400, sender_fault: bool = True,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.sender_fault = sender_fault
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"AwsError({self.code!r}, {self.message!r}, status={self.status})"
