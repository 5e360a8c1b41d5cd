"""The JSON protocol (1.0 and 1.1): `POST /` with `X-Amz-Target: <prefix>.<Operation>`, JSON in, JSON out."""
from __future__ import annotations

import json

from botocore.model import OperationModel

from ..errors import AwsError
from .base import (HttpRequest, HttpResponse, RequestParser, ResponseSerializer, json_body_load, json_value_decode,
                   json_value_encode)


class JsonRequestParser(RequestParser):
    def parse(self, request: HttpRequest, operation: OperationModel, labels: dict[str, str] | None = None) -> dict:
        data = json_body_load(request.body)
        shape = operation.input_shape
        return json_value_decode(shape, data) if shape is not None else {}


class JsonResponseSerializer(ResponseSerializer):
    def content_type(self) -> str:
        version = self.service.metadata.get("jsonVersion", "1.0") if self.service is not None else "1.1"
        return f"application/x-amz-json-{version}"

    def serialize(self, output: dict, operation: OperationModel, request_id: str) -> HttpResponse:
        body = json_value_encode(operation.output_shape, output or {}) if operation.output_shape else {}
        return HttpResponse(200, {"Content-Type": self.content_type(), **self.request_id_headers(request_id)},
                            json.dumps(body).encode())

    def serialize_error(self, error: AwsError, operation: OperationModel | None, request_id: str) -> HttpResponse:
        body = {"__type": error.code, self.message_member(error.code): error.message}
        headers = {"Content-Type": self.content_type(), **self.request_id_headers(request_id), **error.headers}
        return HttpResponse(error.status, headers, json.dumps(body).encode())
