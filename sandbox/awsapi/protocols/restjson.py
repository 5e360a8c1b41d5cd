"""The REST-JSON protocol (Lambda, API Gateway, Scheduler): the operation is the method and path, members live in the
path, the query string, headers and a JSON (or raw) body, as each member's `location` says."""
from __future__ import annotations

import base64
import json
import re
from functools import cached_property
from urllib.parse import unquote

from botocore.model import OperationModel

from ..errors import AwsError
from .base import (HttpRequest, HttpResponse, RequestParser, ResponseSerializer, json_body_load, json_value_decode,
                   json_value_encode, scalar_from_string, timestamp_format)


class UriTemplate:
    """One operation's `requestUri`, e.g. `/2015-03-31/functions/{FunctionName}/code` or `/{Bucket}/{Key+}?uploads`."""

    def __init__(self, operation: OperationModel):
        self.operation = operation
        http = operation.http
        self.method = http.get("method", "POST").upper()
        path, _, query = http.get("requestUri", "/").partition("?")
        self.required_query = {}
        for pair in filter(None, query.split("&")):
            key, _, value = pair.partition("=")
            self.required_query[key] = value or None
        pattern, literal = "", 0
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                name = piece[1:-1]
                if name.endswith("+"):
                    pattern += f"(?P<{_group(name[:-1])}>.+)"
                else:
                    pattern += f"(?P<{_group(name)}>[^/]+)"
            else:
                pattern += re.escape(piece)
                literal += len(piece)
        # A trailing slash is optional on the wire (the SDKs drop it for some operations and keep it for others).
        self.regex = re.compile(pattern.rstrip("/") + "/?$") if pattern != "/" else re.compile("/?$")
        self.names = {_group(n.rstrip("+")): n.rstrip("+") for n in re.findall(r"\{([^}]+)\}", path)}
        # More literal text and more required query keys make a template more specific than one that also matches.
        self.specificity = (len(self.required_query), literal, -len(self.names))

    def match(self, method: str, path: str, query: dict[str, list[str]]) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.regex.match(path)
        if found is None:
            return None
        for key, value in self.required_query.items():
            if key not in query or (value is not None and value not in query[key]):
                return None
        return {self.names[group]: unquote(text) for group, text in found.groupdict().items()}


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


class RestJsonRequestParser(RequestParser):
    @cached_property
    def templates(self) -> list[UriTemplate]:
        templates = [UriTemplate(self.service.operation_model(name)) for name in self.service.operation_names]
        return sorted(templates, key=lambda t: t.specificity, reverse=True)

    def operation_for(self, request: HttpRequest) -> tuple[OperationModel, dict[str, str]] | None:
        for template in self.templates:
            labels = template.match(request.method, request.path, request.query)
            if labels is not None:
                return template.operation, labels
        return None

    def parse(self, request: HttpRequest, operation: OperationModel, labels: dict[str, str] | None = None) -> dict:
        shape = operation.input_shape
        if shape is None:
            return {}
        if labels is None:
            found = self.operation_for(request)
            labels = found[1] if found else {}
        params: dict = {}
        payload_name = shape.serialization.get("payload")
        body_members = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = scalar_from_string(member, labels[wire])
            elif location == "querystring":
                if member.type_name == "map":
                    params[name] = {k: (v if member.value.type_name == "list" else v[0])
                                    for k, v in request.query.items()}
                    if not params[name]:
                        del params[name]
                elif wire in request.query:
                    values = request.query[wire]
                    if member.type_name == "list":
                        params[name] = [scalar_from_string(member.member, v) for v in values]
                    else:
                        params[name] = scalar_from_string(member, values[0])
            elif location == "header":
                value = request.header(wire)
                if value is not None:
                    if member.serialization.get("jsonvalue") or member.metadata.get("jsonvalue"):
                        params[name] = json.loads(base64.b64decode(value))
                    elif member.type_name == "list":
                        params[name] = [v.strip() for v in value.split(",")]
                    else:
                        params[name] = scalar_from_string(member, value)
            elif location == "headers":
                prefix = wire.lower()
                found = {k[len(prefix):]: v for k, v in request.headers.items() if k.startswith(prefix)}
                if found:
                    params[name] = found
            elif name != payload_name:
                body_members[name] = member
        if payload_name:
            member = shape.members[payload_name]
            if member.type_name in ("blob", "string"):
                if request.body:
                    params[payload_name] = (request.body if member.type_name == "blob"
                                            else request.body.decode("utf-8", "replace"))
            else:
                data = json_body_load(request.body)
                if data:
                    params[payload_name] = json_value_decode(member, data)
        elif body_members:
            data = json_body_load(request.body)
            for name, member in body_members.items():
                wire = member.serialization.get("name", name)
                if wire in data:
                    params[name] = json_value_decode(member, data[wire])
        return params


class RestJsonResponseSerializer(ResponseSerializer):
    def serialize(self, output: dict, operation: OperationModel, request_id: str) -> HttpResponse:
        output = output or {}
        status = operation.http.get("responseCode", 200)
        headers = {**self.request_id_headers(request_id)}
        shape = operation.output_shape
        body: bytes = b""
        if shape is None:
            return HttpResponse(status, headers, body)
        payload_name = shape.serialization.get("payload")
        body_values = {}
        for name, member in shape.members.items():
            if output.get(name) is None:
                continue
            value = output[name]
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "statusCode":
                status = int(value)
            elif location == "header":
                if member.type_name == "timestamp":
                    value = timestamp_format(value, member.serialization.get("timestampFormat", "rfc822"))
                elif member.serialization.get("jsonvalue") or member.metadata.get("jsonvalue"):
                    value = base64.b64encode(json.dumps(value).encode()).decode()
                elif member.type_name == "boolean":
                    value = "true" if value else "false"
                elif member.type_name == "list":
                    value = ",".join(str(v) for v in value)
                headers[wire] = str(value)
            elif location == "headers":
                for key, item in value.items():
                    headers[wire + key] = str(item)
            elif name != payload_name:
                body_values[name] = value
        if payload_name:
            member = shape.members[payload_name]
            value = output.get(payload_name)
            if member.type_name in ("blob", "string"):
                if value is not None:
                    body = value if isinstance(value, bytes) else str(value).encode()
                    headers.setdefault("Content-Type", "application/octet-stream"
                                       if member.type_name == "blob" else "text/plain")
            elif value is not None:
                body = json.dumps(json_value_encode(member, value)).encode()
                headers.setdefault("Content-Type", "application/json")
        elif body_values or status not in (204,):
            shaped = json_value_encode(shape, body_values)
            if shaped or status != 204:
                body = json.dumps(shaped).encode()
                headers.setdefault("Content-Type", "application/json")
        return HttpResponse(status, headers, body)

    def serialize_error(self, error: AwsError, operation: OperationModel | None, request_id: str) -> HttpResponse:
        body = {"Type": "User" if error.sender_fault else "Service", self.message_member(error.code): error.message}
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code,
                   **self.request_id_headers(request_id), **error.headers}
        return HttpResponse(error.status, headers, json.dumps(body).encode())
