"""Who invokes a schedule's target: each service that can be a target registers its invoker here.

The functions app registers, in its `AppConfig.ready()`:
    target_register("lambda", invoke)
where `invoke(*, account, arn: str, payload: bytes) -> None` invokes the function `arn` (possibly qualified) in
`account` asynchronously, as Scheduler does, and raises `sandbox.awsapi.errors.AwsError` when it cannot (no such
function, throttled). The scheduler knows nothing else of that app.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.identity import arn_parse

logger = logging.getLogger(__name__)

INVOKED = "Invoked"
# What the console shows when a firing found no invoker, by target service.
_NOT_AVAILABLE = {"lambda": "Lambda is not available on this server"}
_INTERNAL_FAILURE = "Sandcloud could not invoke the target because of a fault on its side; it is logged."

_invokers: dict[str, Callable[..., None]] = {}


def target_register(service: str, invoke: Callable[..., None]) -> None:
    """Fire targets whose ARN names `service` ("lambda") with `invoke(*, account, arn, payload)`."""
    _invokers[service] = invoke


def target_unregister(service: str) -> None:
    _invokers.pop(service, None)


def target_invoker(service: str) -> Callable[..., None] | None:
    """The invoker registered for `service`, or None."""
    return _invokers.get(service)


def target_invoke(*, account, arn: str, payload: bytes) -> str:
    """Invokes the target and says how that went, in a sentence for the schedule's `last_result`: "Invoked", the
    message of the AwsError the invoker raised, or why there was no one to invoke it. Never raises."""
    parsed = arn_parse(arn)
    service = parsed.service if parsed else ""
    invoke = _invokers.get(service)
    if invoke is None:
        return _NOT_AVAILABLE.get(service, f"Sandcloud cannot invoke {service or 'this'} targets")
    try:
        invoke(account=account, arn=arn, payload=payload)
    except AwsError as error:
        return error.message
    except Exception:
        logger.exception("invoking the scheduled target %s failed", arn)
        return _INTERNAL_FAILURE
    return INVOKED
