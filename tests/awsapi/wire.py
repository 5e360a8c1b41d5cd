"""Requests as botocore itself would send them, and botocore's own reading of our responses, for the protocol tests."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence

from sandbox.awsapi.protocols import HttpRequest, HttpResponse, protocol_of
from sandbox.awsapi.router import service_model


def botocore_request(service: str, operation: str, params: dict, *, signing_service: str | None = None,
                     region: str = "us-east-1") -> HttpRequest:
    model = service_model(service)
    op = model.operation_model(operation)
    sent = create_serializer(protocol_of(model), include_validation=False).serialize_to_request(params, op)
    query = sent["query_string"]
    query_text = percent_encode_sequence(query) if isinstance(query, dict) else (query or "")
    body = sent["body"]
    if isinstance(body, dict):
        body = urlencode(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    scope = signing_service or model.metadata.get("signingName") or model.metadata["endpointPrefix"]
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/{region}/{scope}/aws4_request, "
                                "SignedHeaders=host, Signature=0")
    return HttpRequest(method=sent["method"], path=sent["url_path"].split("?")[0],
                       query=parse_qs(query_text + ("&" + sent["url_path"].split("?", 1)[1]
                                                    if "?" in sent["url_path"] else ""), keep_blank_values=True),
                       headers=headers, body=body or b"")


def botocore_parse(service: str, operation: str, response: HttpResponse) -> dict:
    """What boto3 hands the caller for this response (an error response parses into `Error`)."""
    model = service_model(service)
    op = model.operation_model(operation)
    parsed = create_parser(protocol_of(model)).parse(
        {"status_code": response.status, "headers": HeadersDict(response.headers), "body": response.body}, op.output_shape)
    return parsed
