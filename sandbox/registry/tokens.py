"""ECR's authorization tokens (the `docker login` password) and the registry's bearer tokens (distribution's token
authentication: RS256 JWTs whose `access` claims say which repositories the holder may pull from or push to).

Repositories are named `<account id>/<name>` in the registry: ECR's own form, `<account>.dkr.ecr.<region>
.amazonaws.com/<name>`, needs a host name per account that neither the host's Docker Engine nor a workstation
resolves here (and editing the host's /etc/hosts is off limits), so the account is the first path component of the
name instead, behind one registry address. A bearer token therefore grants pull and push only on names that start
with its holder's account id (and only repositories that exist, as ECR refuses a push to a missing repository), and
pull on the shared base images under `sandcloud/`.
"""
from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from dataclasses import dataclass

import jwt
from django.core import signing

from . import selectors
from .keys import signing_key_ensure

AUTHORIZATION_TOKEN_HOURS = 12  # as ECR's GetAuthorizationToken
BEARER_TOKEN_SECONDS = 300
ISSUER = "sandcloud"
SERVICE = "sandcloud-registry"  # the registry's `auth.token.service`, which it sends back in its challenges
SHARED_PREFIX = "sandcloud/"  # base images every learner may pull
USER_NAME = "AWS"
_SALT = "sandcloud.registry.authorization-token"


# --- The ECR authorization token ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuthorizationToken:
    token: str  # base64 of "AWS:<password>", as GetAuthorizationToken answers
    password: str
    expires_at: dt.datetime


def _signer() -> signing.TimestampSigner:
    # "." rather than signing's ":" between the parts: the `aws` CLI's get-login-password splits the decoded token on
    # every ":" and expects exactly two parts, "AWS" and the password.
    return signing.TimestampSigner(salt=_SALT, sep=".")


def authorization_token_issue(*, account_id: str) -> AuthorizationToken:
    """A password for `docker login -u AWS` naming the account, signed with the site's key (django.core.signing, so
    it carries its own time): stateless, checked by `authorization_token_account` without a database row."""
    password = _signer().sign_object({"a": account_id})
    issued = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return AuthorizationToken(token=base64.b64encode(f"{USER_NAME}:{password}".encode()).decode(), password=password,
                              expires_at=issued + dt.timedelta(hours=AUTHORIZATION_TOKEN_HOURS))


def authorization_token_account(*, password: str) -> str | None:
    """The account id a password was issued for, or None when it is forged, altered or older than 12 hours."""
    try:
        data = _signer().unsign_object(password, max_age=dt.timedelta(hours=AUTHORIZATION_TOKEN_HOURS))
    except signing.BadSignature:  # SignatureExpired is one
        return None
    account_id = data.get("a") if isinstance(data, dict) else None
    return account_id if isinstance(account_id, str) else None


# --- Scopes and the bearer token ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Access:
    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def scope_parse(scope: str) -> Access | None:
    """`repository:123456789012/hello:pull,push` → Access; None for anything not shaped like that."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name or not actions:
        return None
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


def access_granted(*, account_id: str, requested: Access) -> Access | None:
    """What the owner of `account_id` gets of what they asked for: pull/push on their own existing repositories,
    pull on shared base images, nothing else (no catalog, no delete, nothing of another account)."""
    if requested.type != "repository":
        return None
    if requested.name.startswith(SHARED_PREFIX):
        allowed = {"pull"}
    else:
        owner, _, repository = requested.name.partition("/")
        if owner != account_id or not selectors.repository_exists(account_id=account_id, name=repository):
            return None
        allowed = {"pull", "push"}
    actions = tuple(a for a in requested.actions if a in allowed)
    return Access(requested.type, requested.name, actions) if actions else None


def bearer_token_issue(*, subject: str, access: list[Access], seconds: int = BEARER_TOKEN_SECONDS) -> str:
    """A JWT the registry trusts (it holds the certificate of the key that signs it)."""
    key = signing_key_ensure()
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "iat": now, "nbf": now - 5, "exp": now + seconds,
              "jti": secrets.token_hex(16), "access": [each.claim() for each in access]}
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def platform_token(*, name: str, actions: tuple[str, ...] = ("pull", "push", "delete")) -> str:
    """A bearer token of the platform itself on one repository, for reading and cleaning up the registry."""
    return bearer_token_issue(subject="sandcloud", access=[Access("repository", name, actions)], seconds=60)
