"""One parser and one serialiser per AWS wire protocol, chosen by the service model's `protocol`."""
from __future__ import annotations

from botocore.model import ServiceModel

from .base import HttpRequest, HttpResponse, RequestParser, ResponseSerializer
from .json import JsonRequestParser, JsonResponseSerializer
from .query import Ec2RequestParser, Ec2ResponseSerializer, QueryRequestParser, QueryResponseSerializer
from .restjson import RestJsonRequestParser, RestJsonResponseSerializer

PROTOCOLS: dict[str, tuple[type[RequestParser], type[ResponseSerializer]]] = {
    "json": (JsonRequestParser, JsonResponseSerializer),
    "rest-json": (RestJsonRequestParser, RestJsonResponseSerializer),
    "query": (QueryRequestParser, QueryResponseSerializer),
    "ec2": (Ec2RequestParser, Ec2ResponseSerializer),
}

# The error code AWS uses for a request that breaks the model's constraints, per protocol family.
VALIDATION_ERROR_CODE = {"json": "ValidationException", "rest-json": "ValidationException",
                         "query": "ValidationError", "ec2": "InvalidParameterValue"}


def protocol_of(service: ServiceModel) -> str:
    """The protocol botocore's clients speak to this service: botocore resolves a model's `protocols` list by its own
    priority (CloudWatch's first choice is CBOR, say), and that is what arrives, so the server must follow it."""
    return service.protocol


def speaks(service: ServiceModel) -> bool:
    return protocol_of(service) in PROTOCOLS


def parser_for(service: ServiceModel) -> RequestParser:
    return PROTOCOLS[protocol_of(service)][0](service)


def serializer_for(service: ServiceModel | None, protocol: str | None = None) -> ResponseSerializer:
    """The service's serialiser; with no service (one Sandcloud does not know), the given protocol's, for errors."""
    return PROTOCOLS[protocol or protocol_of(service)][1](service)


__all__ = ["HttpRequest", "HttpResponse", "RequestParser", "ResponseSerializer", "PROTOCOLS", "VALIDATION_ERROR_CODE",
           "parser_for", "serializer_for", "protocol_of", "speaks"]
