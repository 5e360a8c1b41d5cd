"""A function's own temporary credentials: boto3 inside it reaches the learner's account through the edge, and the
credentials die with its environment."""
from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.awsapi.models import AccessKey
from sandbox.functions.models import ExecutionEnvironment
from tests.aws_edge import aws_edge, aws_edge_listener  # noqa: F401 - fixtures

from .conftest import create

pytestmark = pytest.mark.docker

CALLER = """
import boto3, os
def handler(event, context):
    names = [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]]
    return {"names": names, "key": os.environ["AWS_ACCESS_KEY_ID"], "token": os.environ["AWS_SESSION_TOKEN"],
            "secret": os.environ["AWS_SECRET_ACCESS_KEY"], "endpoint": os.environ.get("AWS_ENDPOINT_URL", "")}
"""


def test_boto3_in_a_function_calls_its_own_account_with_temporary_credentials(aws, learner, other_learner,
                                                                              aws_edge, live_server):
    mine = aws(learner)
    create(mine, learner, name="caller", files={"app.py": CALLER}, Timeout=30, MemorySize=256)
    create(aws(other_learner), other_learner, name="not-yours")

    answer = mine.invoke(FunctionName="caller", Payload=b"{}")

    body = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, body
    assert body["names"] == ["caller"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", body["key"]) and body["endpoint"].startswith("http://aws.sandcloud")

    # The same credentials from outside work only with their token, and not once the environment is gone.
    def client(token):
        return boto3.client("lambda", endpoint_url=live_server.url + "/aws", region_name="us-east-1",
                            aws_access_key_id=body["key"], aws_secret_access_key=body["secret"],
                            aws_session_token=token, config=Config(retries={"max_attempts": 1}))

    assert [f["FunctionName"] for f in client(body["token"]).list_functions()["Functions"]] == ["caller"]
    with pytest.raises(ClientError) as no_token:
        client(None).list_functions()
    assert no_token.value.response["Error"]["Code"] == "UnrecognizedClientException"
    from sandbox.functions import reaper

    reaper.environments_remove(rows=list(ExecutionEnvironment.objects.all()))
    with pytest.raises(ClientError) as gone:
        client(body["token"]).list_functions()
    assert gone.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert not AccessKey.objects.filter(access_key_id=body["key"]).exists()


def test_expired_temporary_credentials_answer_expired_token(aws, learner, live_server):
    from datetime import timedelta

    from django.utils import timezone

    from sandbox.awsapi import identity

    key, secret, token = identity.session_credentials_create(account=identity.aws_account_for(user=learner))
    AccessKey.objects.filter(pk=key.pk).update(expires=timezone.now() - timedelta(seconds=1))
    identity.access_key_forget(key.access_key_id)
    client = boto3.client("lambda", endpoint_url=live_server.url + "/aws", region_name="us-east-1",
                          aws_access_key_id=key.access_key_id, aws_secret_access_key=secret,
                          aws_session_token=token, config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as caught:
        client.list_functions()
    assert caught.value.response["Error"]["Code"] == "ExpiredTokenException"
    assert identity.access_keys_for(user=learner).count() == 0  # never listed among the learner's keys
