"""The query protocol (ELBv2, IAM, STS) and its EC2 variant: form-encoded `Action=...&Version=...` in, XML out."""
from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from ..errors import AwsError
from .base import HttpRequest, HttpResponse, RequestParser, ResponseSerializer, scalar_from_string, timestamp_format


def query_params(request: HttpRequest) -> dict[str, str]:
    """The flat `Key=value` pairs of a query request, from the form body and the query string alike."""
    from urllib.parse import parse_qs

    params = {key: values[0] for key, values in request.query.items()}
    content_type = request.header("content-type", "") or ""
    if request.body and (not content_type or "x-www-form-urlencoded" in content_type):
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise AwsError("MalformedQueryString", "The request body is not valid UTF-8.") from None
        for key, values in parse_qs(text, keep_blank_values=True).items():
            params[key] = values[0]
    return params


class QueryRequestParser(RequestParser):
    """`Names.member.1=a`, `Tags.member.1.Key=k`, `Attributes.entry.1.key=k` (or `Name.1` when flattened)."""

    def parse(self, request: HttpRequest, operation: OperationModel, labels: dict[str, str] | None = None) -> dict:
        shape = operation.input_shape
        if shape is None:
            return {}
        return self._structure(shape, query_params(request), "") or {}

    def member_key(self, name: str, member: Shape) -> str:
        return member.serialization.get("name", name)

    def _structure(self, shape: Shape, params: dict[str, str], prefix: str) -> dict | None:
        out = {}
        for name, member in shape.members.items():
            value = self._value(member, params, prefix + self.member_key(name, member))
            if value is not None:
                out[name] = value
        return out or None

    def _value(self, shape: Shape, params: dict[str, str], key: str):
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, params, key + ".")
        if kind == "list":
            return self._list(shape, params, key)
        if kind == "map":
            return self._map(shape, params, key)
        if key in params:
            return scalar_from_string(shape, params[key])
        return None

    def list_item_prefix(self, shape: Shape, key: str) -> str:
        if shape.serialization.get("flattened"):
            return key + "."
        return f"{key}.{shape.member.serialization.get('name', 'member')}."

    def _list(self, shape: Shape, params: dict[str, str], key: str):
        if params.get(key) == "":
            return []  # how the query protocol sends an explicitly empty list
        prefix = self.list_item_prefix(shape, key)
        items, index = [], 1
        while True:
            item = self._value(shape.member, params, f"{prefix}{index}")
            if item is None:
                break
            items.append(item)
            index += 1
        return items or None

    def _map(self, shape: Shape, params: dict[str, str], key: str):
        prefix = f"{key}." if shape.serialization.get("flattened") else f"{key}.entry."
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out, index = {}, 1
        while f"{prefix}{index}.{key_name}" in params:
            out[params[f"{prefix}{index}.{key_name}"]] = self._value(
                shape.value, params, f"{prefix}{index}.{value_name}")
            index += 1
        return out or None


class Ec2RequestParser(QueryRequestParser):
    """EC2's variant: every list is flattened (`InstanceId.1`), and members go by `queryName` or a capitalised
    `locationName`."""

    def member_key(self, name: str, member: Shape) -> str:
        if "queryName" in member.serialization:
            return member.serialization["queryName"]
        location = member.serialization.get("name")
        return location[:1].upper() + location[1:] if location else name

    def list_item_prefix(self, shape: Shape, key: str) -> str:
        return key + "."


def _xml_scalar(shape: Shape, value) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(timestamp_format(value, shape.serialization.get("timestampFormat", "iso8601")))
    if kind == "blob":
        import base64
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return escape(str(value))


class QueryResponseSerializer(ResponseSerializer):
    def namespace(self) -> str:
        return self.service.metadata.get("xmlNamespace", "") if self.service is not None else ""

    def serialize(self, output: dict, operation: OperationModel, request_id: str) -> HttpResponse:
        inner = self._members(operation.output_shape, output or {}) if operation.output_shape else ""
        wrapper = operation.output_shape.serialization.get("resultWrapper") if operation.output_shape else None
        name = operation.name
        result = f"<{wrapper}>{inner}</{wrapper}>" if wrapper else inner
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{name}Response xmlns="{self.namespace()}">{result}'
               f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{name}Response>")
        return HttpResponse(200, {"Content-Type": "text/xml", **self.request_id_headers(request_id)}, xml.encode())

    def element_name(self, name: str, shape: Shape) -> str:
        return shape.serialization.get("name", name)

    def _members(self, shape: Shape, value: dict) -> str:
        parts = []
        for name, member in shape.members.items():
            if value.get(name) is not None:
                parts.append(self._element(self.element_name(name, member), member, value[name]))
        return "".join(parts)

    def _element(self, tag: str, shape: Shape, value) -> str:
        kind = shape.type_name
        if kind == "structure":
            return f"<{tag}>{self._members(shape, value)}</{tag}>"
        if kind == "list":
            item_tag = shape.member.serialization.get("name", self.default_item_tag)
            if shape.serialization.get("flattened"):
                return "".join(self._element(tag, shape.member, item) for item in value)
            items = "".join(self._element(item_tag, shape.member, item) for item in value)
            return f"<{tag}>{items}</{tag}>"
        if kind == "map":
            key_tag = shape.key.serialization.get("name", "key")
            value_tag = shape.value.serialization.get("name", "value")
            entries = "".join(f"<entry>{self._element(key_tag, shape.key, k)}{self._element(value_tag, shape.value, v)}"
                              f"</entry>" for k, v in value.items())
            return f"<{tag}>{entries}</{tag}>"
        return f"<{tag}>{_xml_scalar(shape, value)}</{tag}>"

    default_item_tag = "member"

    def serialize_error(self, error: AwsError, operation: OperationModel | None, request_id: str) -> HttpResponse:
        kind = "Sender" if error.sender_fault else "Receiver"
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{self.namespace()}"><Error>'
               f"<Type>{kind}</Type><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
               f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        headers = {"Content-Type": "text/xml", **self.request_id_headers(request_id), **error.headers}
        return HttpResponse(error.status, headers, xml.encode())


class Ec2ResponseSerializer(QueryResponseSerializer):
    """EC2 answers without a result wrapper, with a lower-case `requestId` and lists of `<item>`."""

    default_item_tag = "item"

    def serialize(self, output: dict, operation: OperationModel, request_id: str) -> HttpResponse:
        inner = self._members(operation.output_shape, output or {}) if operation.output_shape else ""
        name = operation.name
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{name}Response xmlns="{self.namespace()}">'
               f"<requestId>{request_id}</requestId>{inner}</{name}Response>")
        return HttpResponse(200, {"Content-Type": "text/xml", **self.request_id_headers(request_id)}, xml.encode())

    def serialize_error(self, error: AwsError, operation: OperationModel | None, request_id: str) -> HttpResponse:
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(error.code)}</Code>'
               f"<Message>{escape(error.message)}</Message></Error></Errors>"
               f"<RequestID>{request_id}</RequestID></Response>")
        headers = {"Content-Type": "text/xml", **self.request_id_headers(request_id), **error.headers}
        return HttpResponse(error.status, headers, xml.encode())
