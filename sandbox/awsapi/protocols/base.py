"""What every AWS wire protocol shares: a parsed request, the input validation AWS does, and the serialiser's base."""
from __future__ import annotations

import abc
import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from email.utils import format_datetime

from botocore.model import OperationModel, ServiceModel, Shape

from ..errors import AwsError


@dataclass
class HttpRequest:
    """The request as the edge read it: the path is the one the client signed, below the edge's mount point."""

    method: str
    path: str  # raw (still percent-encoded), starting with "/", without the edge prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RequestParser(abc.ABC):
    """Turns a request for one operation into the operation's input members, as botocore named them (one subclass per
    protocol family: json.py, restjson.py, query.py)."""

    def __init__(self, service: ServiceModel):
        self.service = service

    @abc.abstractmethod
    def parse(self, request: HttpRequest, operation: OperationModel, labels: dict[str, str] | None = None) -> dict:
        """`labels` are the path parameters the router matched (rest-json only)."""


class ResponseSerializer(abc.ABC):
    """Turns an operation's output members, or an AwsError, into the HTTP response the client's SDK expects (one
    subclass per protocol family)."""

    def __init__(self, service: ServiceModel | None):
        # None when the request named no service Sandcloud knows: only errors are then serialised.
        self.service = service

    @abc.abstractmethod
    def serialize(self, output: dict, operation: OperationModel, request_id: str) -> HttpResponse:
        """The operation's output members, placed where the model says (status, headers, payload)."""

    @abc.abstractmethod
    def serialize_error(self, error: AwsError, operation: OperationModel | None, request_id: str) -> HttpResponse:
        """The protocol's error shape for `error`."""

    @staticmethod
    def request_id_headers(request_id: str) -> dict[str, str]:
        # json and rest-json SDKs read the first, query-era SDKs and tools the second; AWS sends one or the other.
        return {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}

    def error_shape(self, code: str) -> Shape | None:
        """The model's shape for an error code, which says whether its message member is `message` or `Message`."""
        for shape in (self.service.error_shapes if self.service is not None else ()):
            if code in (shape.name, shape.metadata.get("error", {}).get("code")):
                return shape
        return None

    def message_member(self, code: str) -> str:
        shape = self.error_shape(code)
        if shape is not None:
            for name in shape.members:
                if name.lower() == "message":
                    return name
        return "message"


# --- values from strings (uri, query string, headers, the query protocol) -----------------------------------------

def timestamp_parse(value) -> dt.datetime:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    text = str(value).strip()
    try:
        return dt.datetime.fromtimestamp(float(text), tz=dt.timezone.utc)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        raise AwsError("SerializationException", f"Cannot parse timestamp {text!r}") from None


def timestamp_format(value, fmt: str) -> str | float | int:
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    value = value.astimezone(dt.timezone.utc)
    if fmt == "unixTimestamp":
        return round(value.timestamp(), 3)
    if fmt == "rfc822":
        return format_datetime(value, usegmt=True)
    text = value.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def scalar_from_string(shape: Shape, text: str):
    """A uri / query-string / header / query-protocol value, typed as its shape says."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
    except ValueError:
        raise AwsError("SerializationException", f"Cannot parse {text!r} as {kind}") from None
    if kind == "timestamp":
        return timestamp_parse(text)
    if kind == "blob":
        return base64.b64decode(text)
    return text


def json_value_decode(shape: Shape, value):
    """A value from a JSON body, typed as its shape says (blobs arrive base64-encoded, timestamps as epoch seconds)."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        # Members the model does not know are dropped, as AWS's JSON services ignore them: a provider's keyword
        # arguments are then exactly the model's members.
        return {key: json_value_decode(shape.members[key], item) for key, item in value.items()
                if key in shape.members}
    if kind == "list" and isinstance(value, list):
        return [json_value_decode(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: json_value_decode(shape.value, item) for key, item in value.items()}
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise AwsError("SerializationException", f"Cannot parse {shape.name} as base64") from None
    if kind == "timestamp" and isinstance(value, (int, float, str)):
        return timestamp_parse(value)
    return value


def json_value_encode(shape: Shape | None, value, timestamp_format_name: str = "unixTimestamp"):
    """An output value for a JSON body; members the model does not name are left out, as AWS's SDKs would drop them."""
    if value is None:
        return None
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, member in shape.members.items():
            if key in value and value[key] is not None:
                out[member.serialization.get("name", key)] = json_value_encode(
                    member, value[key], timestamp_format_name)
        return out
    if kind == "list":
        return [json_value_encode(shape.member, item, timestamp_format_name) for item in value]
    if kind == "map":
        return {key: json_value_encode(shape.value, item, timestamp_format_name) for key, item in value.items()}
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    if kind == "timestamp":
        return timestamp_format(value, shape.serialization.get("timestampFormat", timestamp_format_name))
    return value


def json_body_load(body: bytes) -> dict:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AwsError("SerializationException", "Start of structure or map found where not expected.") from None
    if not isinstance(data, dict):
        raise AwsError("SerializationException", "Start of structure or map found where not expected.")
    return data


# --- validation against the input shape, in AWS's own words --------------------------------------------------------

def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "java.nio.HeapByteBuffer"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str, separators=(",", ":"))[:200]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


_TYPES = {
    "string": (str,), "integer": (int,), "long": (int,), "float": (int, float), "double": (int, float),
    "boolean": (bool,), "blob": (bytes, bytearray, str), "timestamp": (dt.datetime, int, float),
    "structure": (dict,), "list": (list, tuple), "map": (dict,),
}


def input_validate(shape: Shape | None, params: dict, *, error_code: str = "ValidationException") -> None:
    """Raise AWS's `1 validation error detected: ...` for every constraint of the input shape the params break."""
    if shape is None:
        return
    problems: list[str] = []
    _validate(shape, params, "", problems, top=True)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise AwsError(error_code, f"{count} validation {noun} detected: " + "; ".join(problems))


def _validate(shape: Shape, value, path: str, problems: list[str], top: bool = False) -> None:
    kind = shape.type_name
    allowed = _TYPES.get(kind)
    if allowed and (not isinstance(value, allowed) or (kind in ("integer", "long", "float", "double")
                                                       and isinstance(value, bool))):
        # AWS answers a wrongly typed member with a SerializationException before it validates anything else.
        raise AwsError("SerializationException", f"Value {_show(value)!r} at '{path or shape.name}' "
                                                 f"is not of type {kind}.")
    where = path or shape.name
    if kind == "structure":
        for name in shape.required_members:
            if value.get(name) is None:
                member_path = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
                problems.append(f"Value null at '{member_path}' failed to satisfy constraint: "
                                "Member must not be null")
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None or item is None:
                continue
            member_path = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
            _validate(member, item, member_path, problems)
        return
    metadata = shape.metadata
    if kind in ("string", "list", "map", "blob"):
        length = len(value)
        if "min" in metadata and length < metadata["min"]:
            problems.append(f"Value {_quoted(value)} at '{where}' failed to satisfy constraint: "
                            f"Member must have length greater than or equal to {metadata['min']}")
        if "max" in metadata and length > metadata["max"]:
            problems.append(f"Value {_quoted(value)} at '{where}' failed to satisfy constraint: "
                            f"Member must have length less than or equal to {metadata['max']}")
    if kind in ("integer", "long", "float", "double"):
        if "min" in metadata and value < metadata["min"]:
            problems.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                            f"Member must have value greater than or equal to {metadata['min']}")
        if "max" in metadata and value > metadata["max"]:
            problems.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                            f"Member must have value less than or equal to {metadata['max']}")
    if kind == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                            f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = metadata.get("pattern")
        if pattern and not _pattern_matches(pattern, value):
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                            f"Member must satisfy regular expression pattern: {pattern}")
    if kind == "list":
        for index, item in enumerate(value, start=1):
            _validate(shape.member, item, f"{where}.{index}.member", problems)
    if kind == "map":
        for key, item in value.items():
            _validate(shape.key, key, f"{where}.key", problems)
            _validate(shape.value, item, f"{where}.{key}.member", problems)


def _quoted(value) -> str:
    return f"'{_show(value)}'" if not isinstance(value, (list, dict)) else _show(value)


_PATTERNS: dict[str, re.Pattern | None] = {}


def _pattern_matches(pattern: str, value: str) -> bool:
    """AWS's patterns are Java regular expressions; one Python cannot read is not checked rather than misread."""
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern, re.DOTALL)
        except re.error:
            _PATTERNS[pattern] = None
    compiled = _PATTERNS[pattern]
    return compiled is None or compiled.fullmatch(value) is not None
