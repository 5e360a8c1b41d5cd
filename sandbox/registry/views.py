"""The registry's token service (distribution's token authentication): `docker login` and every push and pull ask
here, with user `AWS` and an ECR authorization token as password, for a bearer token the registry trusts."""
from __future__ import annotations

import base64
import binascii
import datetime as dt

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from . import selectors, tokens


def _unauthorized(message: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"code": "UNAUTHORIZED", "message": message}]}, status=401)
    response["WWW-Authenticate"] = 'Basic realm="Sandcloud registry"'
    return response


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        user, separator, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if separator else None


@require_GET
def token(request: HttpRequest) -> JsonResponse:
    """Answers `{"token", "access_token", "expires_in", "issued_at"}` granting what the caller's account may do of
    the scopes asked for (none asked: `docker login` checking the password). A bad password gets 401; a scope it may
    not have is simply left out, and the registry then refuses the request (denied / unauthorized)."""
    credentials = _basic_credentials(request)
    if credentials is None:
        return _unauthorized("authentication required: docker login -u AWS with `aws ecr get-login-password`")
    user, password = credentials
    account_id = tokens.authorization_token_account(password=password) if user == tokens.USER_NAME else None
    if account_id is None or not selectors.account_exists(account_id=account_id):
        return _unauthorized("Your authorization token is invalid or has expired: get a new one with "
                             "`aws ecr get-login-password` and log in again.")
    if request.GET.get("service", tokens.SERVICE) != tokens.SERVICE:
        return JsonResponse({"errors": [{"code": "DENIED", "message": "unknown service"}]}, status=400)
    granted = []
    for scope in request.GET.getlist("scope"):
        for part in scope.split(" "):  # clients may also send several scopes in one parameter
            requested = tokens.scope_parse(part)
            access = requested and tokens.access_granted(account_id=account_id, requested=requested)
            if access:
                granted.append(access)
    bearer = tokens.bearer_token_issue(subject=account_id, access=granted)
    issued = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return JsonResponse({"token": bearer, "access_token": bearer, "expires_in": tokens.BEARER_TOKEN_SECONDS,
                         "issued_at": issued})
