"""The edge endpoint: one view under /aws/ that authenticates, routes, parses and answers every AWS API request."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs

from django.conf import settings
from django.http import HttpResponse as DjangoResponse
from django.views.decorators.csrf import csrf_exempt

from . import providers, router
from .errors import AwsError
from .protocols import HttpRequest, HttpResponse, VALIDATION_ERROR_CODE, parser_for, protocol_of, serializer_for
from .protocols.base import input_validate

log = logging.getLogger(__name__)

# Where the edge is mounted on the site (config/urls.py): a learner's endpoint URL is the site's origin plus this.
EDGE_PREFIX = "/aws"

_DRAIN_CHUNK = 64 * 1024


def _raw_path(request) -> str:
    """The path as the client sent and signed it, still percent-encoded (the identity half knows how to find it)."""
    from .sigv4 import request_raw_path

    return request_raw_path(request)


def _body(request, limit: int) -> bytes:
    """The body, at most `limit` bytes; a larger one is read off the connection (so the client sees the answer rather
    than a reset) and refused."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        remaining = min(declared, limit * 4 + _DRAIN_CHUNK)
        while remaining > 0 and request.read(min(_DRAIN_CHUNK, remaining)):
            remaining -= _DRAIN_CHUNK
        raise _too_large(limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> AwsError:
    return AwsError("RequestEntityTooLargeException", f"Request must be smaller than {limit} bytes for the operation.",
                    status=413)


def _to_django(response: HttpResponse) -> DjangoResponse:
    out = DjangoResponse(response.body, status=response.status)
    out.headers["Content-Type"] = response.headers.get("Content-Type", "application/json")
    for name, value in response.headers.items():
        out.headers[name] = value
    return out


def _authenticate(**request):
    # Imported here so that the protocol half of this package loads on its own; sigv4 is the identity half's.
    from . import sigv4

    return sigv4.request_authenticate(**request)


@csrf_exempt
def edge(request) -> DjangoResponse:
    """Every AWS API request to the site: read it, answer it as the service would (`request_answer`)."""
    raw_path = _raw_path(request)
    query_string = request.META.get("QUERY_STRING", "")
    wire = HttpRequest(method=request.method, path=raw_path[len(EDGE_PREFIX):] or "/",
                       query=parse_qs(query_string, keep_blank_values=True),
                       headers={name.lower(): value for name, value in request.headers.items()}, body=b"")
    response = request_answer(wire=wire, signed_path=raw_path, query_string=query_string,
                              read_body=lambda: _body(request, settings.SANDCLOUD_AWS_MAX_REQUEST_BYTES))
    return _to_django(response)


def request_answer(*, wire: HttpRequest, signed_path: str, query_string: str,
                   read_body: Callable[[], bytes]) -> HttpResponse:
    """Authenticate, route, parse, validate, call the provider, serialise; every failure in the protocol's words."""
    request_id = str(uuid.uuid4())
    service = operation = None
    serializer = serializer_for(None, router.guessed_protocol(wire))

    def authenticate(protocol: str):
        return _authenticate(method=wire.method, path=signed_path, query_string=query_string, headers=wire.headers,
                             body=wire.body, protocol=protocol)

    try:
        wire.body = read_body()
        try:
            service = router.service_for(wire)
        except AwsError:
            if router.credential_scope(wire) is None:
                # An unsigned request learns only that it must be signed, in the words of the protocol it spoke.
                authenticate(router.guessed_protocol(wire))
            raise
        protocol = protocol_of(service)
        serializer = serializer_for(service)
        access_key = authenticate(protocol)
        route = router.operation_for(service, wire)
        operation = route.operation
        handler = providers.handler_for(service.service_name, operation.name)
        if handler is None:
            raise router.unsupported(service, operation.name)
        params = parser_for(service).parse(wire, operation, route.labels)
        input_validate(operation.input_shape, params, error_code=VALIDATION_ERROR_CODE[protocol])
        scope = router.credential_scope(wire)
        context = providers.RequestContext(
            account=access_key.account, access_key=access_key,
            region=scope.region if scope else settings.SANDCLOUD_AWS_REGION, request_id=request_id,
            service=service.service_name, operation=operation.name)
        return serializer.serialize(handler(context, **params) or {}, operation, request_id)
    except AwsError as error:
        return serializer.serialize_error(error, operation, request_id)
    except Exception:
        # The learner sees AWS's words for a fault on our side; the traceback stays in our log.
        log.exception("AWS request %s failed: %s %s", request_id, getattr(service, "service_name", "?"),
                      getattr(operation, "name", wire.path))
        error = AwsError("InternalFailure", "The request processing has failed because of an unknown error, "
                                            "exception or failure.", status=500, sender_fault=False)
        return serializer.serialize_error(error, operation, request_id)
