"""The registry of providers: each imitated service's app registers one class whose methods are its AWS operations.

A provider method is the snake_case of the operation name (`ListFunctions` → `list_functions`), takes the request's
`RequestContext` and the parsed, validated input members as keyword arguments named as botocore names them
(`FunctionName=...`), and returns the output members as a dict, or raises `AwsError`. An app registers its provider
in its `AppConfig.ready()`: `provider_register("lambda", FunctionsApi)`; an operation without a method answers
"Sandcloud does not support the operation ... yet." in the protocol's error shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore import xform_name

_providers: dict[str, Any] = {}


@dataclass(frozen=True)
class RequestContext:
    """Who is calling and where: the account the signing key belongs to, the region it signed for, the request id."""

    account: Any  # sandbox.awsapi's Account (account_id, user)
    access_key: Any
    region: str
    request_id: str
    service: str
    operation: str

    @property
    def account_id(self) -> str:
        return self.account.account_id


def provider_register(service_name: str, provider: Any) -> None:
    """Serve `service_name` (botocore's name: "lambda", "logs", "elbv2") with `provider` (a class or an instance)."""
    _providers[service_name] = provider() if isinstance(provider, type) else provider


def provider_unregister(service_name: str) -> None:
    _providers.pop(service_name, None)


def registered() -> list[str]:
    return list(_providers)


def method_name(operation_name: str) -> str:
    return xform_name(operation_name)


def handler_for(service_name: str, operation_name: str):
    """The provider's bound method for an operation, or None when Sandcloud does not serve it."""
    provider = _providers.get(service_name)
    if provider is None:
        return None
    return getattr(provider, method_name(operation_name), None)
