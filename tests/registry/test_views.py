"""The registry's token service: what a bearer token grants for an ECR authorization token, as the registry reads it."""
from __future__ import annotations

import base64
import time

import jwt
import pytest
from cryptography import x509
from django.core import signing

from sandbox.registry import services, tokens
from sandbox.registry.keys import signing_key_ensure

pytestmark = pytest.mark.django_db

URL = "/registry/token"


@pytest.fixture(autouse=True)
def registry_dir(settings, tmp_path):
    settings.SANDCLOUD_REGISTRY = {**settings.SANDCLOUD_REGISTRY, "DIR": str(tmp_path)}


def basic(password: str, user: str = "AWS") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def granted(client, password: str, *scopes: str) -> list[dict]:
    """The `access` claims of the bearer token the service answers, verified with the certificate the registry
    trusts (so a token signed with any other key would fail here as it fails there)."""
    response = client.get(URL, {"service": tokens.SERVICE, "scope": list(scopes)}, HTTP_AUTHORIZATION=basic(password))
    assert response.status_code == 200, response.content
    key = signing_key_ensure()
    certificate = x509.load_pem_x509_certificate(key.certificate_path.read_bytes())
    assert jwt.get_unverified_header(response.json()["token"])["kid"] == key.kid
    claims = jwt.decode(response.json()["token"], certificate.public_key(), algorithms=["RS256"],
                        audience=tokens.SERVICE, issuer=tokens.ISSUER)
    return claims["access"]


def password_for(account) -> str:
    return tokens.authorization_token_issue(account_id=account.account_id).password


def test_the_owner_gets_pull_and_push_on_their_repository(client, account):
    services.repository_create(account=account, name="hello")

    access = granted(client, password_for(account), f"repository:{account.account_id}/hello:pull,push")

    assert access == [{"type": "repository", "name": f"{account.account_id}/hello", "actions": ["pull", "push"]}]


def test_another_accounts_repository_gets_no_access(client, account, other_account):
    services.repository_create(account=other_account, name="hello")

    assert granted(client, password_for(account), f"repository:{other_account.account_id}/hello:pull,push") == []


def test_a_repository_that_does_not_exist_gets_no_access(client, account):
    assert granted(client, password_for(account), f"repository:{account.account_id}/missing:pull,push") == []


def test_shared_base_images_are_pull_only(client, account):
    access = granted(client, password_for(account), "repository:sandcloud/python:pull,push")

    assert access == [{"type": "repository", "name": "sandcloud/python", "actions": ["pull"]}]


def test_the_catalog_and_deletes_are_never_granted(client, account):
    services.repository_create(account=account, name="hello")

    access = granted(client, password_for(account), "registry:catalog:*",
                     f"repository:{account.account_id}/hello:delete,*")

    assert access == []


def test_a_login_without_scope_gets_a_token_granting_nothing(client, account):
    assert granted(client, password_for(account)) == []


@pytest.mark.parametrize("authorization", [None, basic("forged"), basic("x", user="AWS")[:-2], "Bearer abc"])
def test_a_missing_or_forged_password_is_unauthorized(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.get(URL, {"service": tokens.SERVICE}, **headers)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_another_user_name_than_aws_is_unauthorized(client, account):
    response = client.get(URL, HTTP_AUTHORIZATION=basic(password_for(account), user="ada"))

    assert response.status_code == 401


def test_a_token_older_than_12_hours_is_unauthorized(client, account, monkeypatch):
    issued_at = time.time() - 12 * 3600 - 60
    with monkeypatch.context() as patched:
        patched.setattr(signing.time, "time", lambda: issued_at)
        password = password_for(account)

    response = client.get(URL, HTTP_AUTHORIZATION=basic(password))

    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


def test_a_token_of_a_closed_account_is_unauthorized(client, account):
    password = password_for(account)
    services.repository_create(account=account, name="hello")
    account.delete()

    response = client.get(URL, {"scope": f"repository:{account.account_id}/hello:pull,push"},
                          HTTP_AUTHORIZATION=basic(password))

    assert response.status_code == 401
