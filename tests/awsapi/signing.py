"""Requests signed on the client side exactly as the aws CLI and boto3 sign them (botocore's SigV4 signers)."""
from __future__ import annotations

import datetime as dt
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ENDPOINT = "http://127.0.0.1:8000/aws"


def signed(*, access_key_id: str, secret: str, method: str = "POST", url: str = ENDPOINT + "/",
           service: str = "ecs", region: str = "us-east-1", headers: dict | None = None, body: bytes = b"",
           when: dt.datetime | None = None, presign_expires: int | None = None) -> dict:
    """The keyword arguments request_authenticate takes, for a request botocore signed at `when` (default: now).

    Host is added as an HTTP client adds it: botocore signs it from the URL but leaves sending it to the client.
    """
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    credentials = Credentials(access_key_id, secret)
    signer = (SigV4QueryAuth(credentials, service, region, expires=presign_expires) if presign_expires is not None
              else SigV4Auth(credentials, service, region))
    when = when or dt.datetime.now(dt.timezone.utc)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent = {name: value.decode() if isinstance(value, bytes) else value for name, value in prepared.headers.items()}
    sent["Host"] = parts.netloc
    return {"method": prepared.method, "path": parts.path, "query_string": parts.query, "headers": sent,
            "body": prepared.body or b""}


def ecs_call(*, access_key_id: str, secret: str, **kwargs) -> dict:
    """A JSON-protocol call (ECS ListClusters), as `aws ecs list-clusters` sends it."""
    headers = {"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
               "Content-Type": "application/x-amz-json-1.1"}
    headers.update(kwargs.pop("headers", {}))
    return signed(access_key_id=access_key_id, secret=secret, headers=headers, body=kwargs.pop("body", b"{}"),
                  **kwargs)
