"""The registry's token service (distribution's token authentication): `docker login` and every push and pull ask
here, with user `AWS` and an ECR authorization token as password, for a bearer token the registry trusts; and the
ECR console: a learner's repositories, and one repository's images, lifecycle policy and push commands."""
from __future__ import annotations

import base64
import binascii
import datetime as dt

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sandbox.awsapi.identity import aws_account_for

from . import console, selectors, tokens


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


@login_required
@require_GET
def repository_list(request: HttpRequest):
    account = aws_account_for(user=request.user)
    repositories = list(selectors.repositories_for(account=account))
    rows = [{"repository": each, "bytes": selectors.repository_bytes(repository=each),
             "images": each.images.count()} for each in repositories]
    return render(request, "registry/list.html", {
        "rows": rows, "usage": console.usage_for(account=account), "account_id": account.account_id,
        "commands": console.push_commands(repository=repositories[0] if repositories else None),
    })


@login_required
@require_GET
def repository_detail(request: HttpRequest, name: str):
    """One of the viewer's own repositories; anyone else's (or none) is 404, so nobody learns another's names."""
    account = aws_account_for(user=request.user)
    repository = selectors.repository_for(account=account, name=name)
    if repository is None:
        raise Http404("No such repository.")
    images = selectors.images_for(repository=repository)
    expiring, policy_problem = console.preview_now(repository=repository, images=images)
    expiring_rule = {each.image.digest: each.rule_priority for each in expiring}
    for image in images:
        image.expiring_rule = expiring_rule.get(image.digest)
    tag = next((image.tag_names[0] for image in images if image.tag_names), "latest")
    return render(request, "registry/detail.html", {
        "repository": repository, "images": images, "bytes": selectors.repository_bytes(repository=repository),
        "usage": console.usage_for(account=account), "commands": console.push_commands(repository=repository, tag=tag),
        "policy": console.policy_pretty(repository.lifecycle_policy), "policy_problem": policy_problem,
        "expiring": expiring, "expiries": selectors.expiries_for(repository=repository),
    })
