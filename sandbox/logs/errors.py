"""The errors CloudWatch Logs answers with, in AWS's own words (every one is a 400, as the service sends them)."""
from __future__ import annotations

from sandbox.awsapi.errors import AwsError


class InvalidParameter(AwsError):
    def __init__(self, message: str):
        super().__init__("InvalidParameterException", message)


class LogGroupNotFound(AwsError):
    def __init__(self):
        super().__init__("ResourceNotFoundException", "The specified log group does not exist.")


class LogStreamNotFound(AwsError):
    def __init__(self):
        super().__init__("ResourceNotFoundException", "The specified log stream does not exist.")


class LogGroupAlreadyExists(AwsError):
    def __init__(self):
        super().__init__("ResourceAlreadyExistsException", "The specified log group already exists")


class LogStreamAlreadyExists(AwsError):
    def __init__(self):
        super().__init__("ResourceAlreadyExistsException", "The specified log stream already exists")


class LimitExceeded(AwsError):
    """Too many log groups (or streams) in the account."""

    def __init__(self):
        super().__init__("LimitExceededException", "Resource limit exceeded.")


class InvalidNextToken(InvalidParameter):
    def __init__(self):
        super().__init__("The specified nextToken is invalid.")
