"""The service router: which botocore service model and operation a request is for, as AWS's own front end decides.

The service comes from the SigV4 credential scope (`Credential=AKID/20260101/us-east-1/logs/aws4_request`), refined by
`X-Amz-Target` for the JSON protocols, `Version` for the query protocol (ELB and ELBv2 sign alike) and the path for
rest-json (API Gateway v1 and v2 sign alike); the operation from the target, the `Action` or the method and path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import botocore.session
from botocore.model import OperationModel, ServiceModel

from . import providers
from .errors import AwsError
from .protocols import HttpRequest, parser_for, protocol_of, speaks
from .protocols.query import query_params
from .protocols.restjson import RestJsonRequestParser

# The services Sandcloud imitates or means to; a service app that registers a provider is added to these.
SERVICES = ("lambda", "logs", "ecs", "ecr", "apigateway", "apigatewayv2", "scheduler", "application-autoscaling",
            "events", "elbv2", "ec2", "sts", "iam")

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@lru_cache(maxsize=1)
def _session():
    return botocore.session.get_session()


@lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    return _session().get_service_model(name)


@lru_cache(maxsize=None)
def rest_parser(name: str) -> RestJsonRequestParser:
    return parser_for(service_model(name))


def signing_name(model: ServiceModel) -> str:
    return model.metadata.get("signingName") or model.metadata.get("endpointPrefix") or model.service_name


def services_known() -> list[str]:
    return list(dict.fromkeys([*SERVICES, *providers.registered()]))


@dataclass(frozen=True)
class CredentialScope:
    access_key_id: str
    date: str
    region: str
    service: str


def credential_scope(request: HttpRequest) -> CredentialScope | None:
    text = request.header("authorization") or ""
    found = _CREDENTIAL.search(text)
    if found is None:
        credential = (request.query.get("X-Amz-Credential") or [""])[0]
        found = _CREDENTIAL.search("Credential=" + credential)
    return CredentialScope(*found.groups()) if found else None


def guessed_protocol(request: HttpRequest) -> str:
    """The protocol of a request for no service Sandcloud knows, so that even that refusal is one the SDK can read."""
    if request.header("x-amz-target"):
        return "json"
    if "Action" in request.query or b"Action=" in request.body[:4096]:
        return "query"
    return "rest-json"


def service_for(request: HttpRequest) -> ServiceModel:
    """The service model the request is for; an AwsError (UnknownService) when Sandcloud imitates no such service."""
    scope = credential_scope(request)
    target = request.header("x-amz-target") or ""
    # A service whose clients speak a protocol Sandcloud does not (smithy-rpc-v2-cbor) is one it cannot serve.
    candidates = [m for m in map(service_model, services_known()) if speaks(m)]
    if scope is not None:
        candidates = [m for m in candidates if signing_name(m) == scope.service]
    if target:
        prefix = target.rpartition(".")[0]
        by_target = [m for m in candidates if m.metadata.get("targetPrefix") == prefix]
        candidates = by_target or [m for m in candidates if protocol_of(m) == "json"]
    if len(candidates) > 1:
        query_like = [m for m in candidates if protocol_of(m) in ("query", "ec2")]
        if query_like:
            version = query_params(request).get("Version")
            by_version = [m for m in query_like if m.api_version == version]
            candidates = by_version or candidates
    if len(candidates) > 1:
        by_path = [m for m in candidates if protocol_of(m) == "rest-json"
                   and rest_parser(m.service_name).operation_for(request) is not None]
        candidates = by_path or candidates
    if scope is None and len(candidates) != 1:
        raise AwsError("UnknownServiceException", "Sandcloud could not tell which service the request is for: "
                                                  "sign it with AWS Signature Version 4.")
    if not candidates:
        name = scope.service if scope else "unknown"
        raise AwsError("UnknownServiceException", f"Sandcloud does not support the service {name} yet.")
    return candidates[0]


@dataclass
class Route:
    service: ServiceModel
    operation: OperationModel
    labels: dict[str, str]  # rest-json path parameters, by their wire names


def unsupported(service: ServiceModel, operation: str) -> AwsError:
    """AWS's answer to an action it does not know, naming the action as one Sandcloud does not serve yet."""
    message = f"Sandcloud does not support the operation {operation} of service {service.service_name} yet."
    if protocol_of(service) in ("query", "ec2"):
        return AwsError("InvalidAction", message)
    return AwsError("UnknownOperationException", message)


def operation_for(service: ServiceModel, request: HttpRequest) -> Route:
    """The operation within the service; an AwsError in the protocol's words when the service has no such action."""
    protocol = protocol_of(service)
    if protocol == "json":
        name = (request.header("x-amz-target") or "").rpartition(".")[2]
        if not name:
            raise AwsError("UnknownOperationException", "Missing X-Amz-Target header.")
    elif protocol in ("query", "ec2"):
        name = query_params(request).get("Action", "")
        if not name:
            raise AwsError("MissingAction", "The request must contain the parameter Action.")
    else:
        found = rest_parser(service.service_name).operation_for(request)
        if found is None:
            error = unsupported(service, f"{request.method} {request.path}")
            error.status = 404
            raise error
        return Route(service, found[0], found[1])
    if name not in service.operation_names:
        raise unsupported(service, name)
    return Route(service, service.operation_model(name), {})
