"""Invoking a function end to end: boto3 → the edge → a real execution environment → AWS's answer and log lines."""
from __future__ import annotations

import base64
import json
import re

import pytest

from .conftest import create

pytestmark = pytest.mark.docker


def test_a_created_function_answers_its_invocation_with_the_handlers_result(aws, learner):
    client = aws(learner)
    created = create(client, learner)
    assert created["State"] == "Pending"
    assert client.get_function(FunctionName="hello")["Configuration"]["State"] == "Active"

    answer = client.invoke(FunctionName="hello", Payload=json.dumps({"name": "Ada"}), LogType="Tail")

    body = json.loads(answer["Payload"].read())
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert body["greeting"] == "Hello, Ada" and body["memory"] == "128"
    assert body["request_id"] == answer["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(answer["LogResult"]).decode()
    assert f"START RequestId: {body['request_id']} Version: $LATEST" in log
    assert 'hello {"name": "Ada"}' in log
    report = re.search(r"REPORT RequestId: \S+\tDuration: (\d+\.\d\d) ms\tBilled Duration: (\d+) ms\t"
                       r"Memory Size: 128 MB\tMax Memory Used: (\d+) MB\tInit Duration: (\d+\.\d\d) ms\t\n", log)
    assert report, log
    assert 5 < int(report.group(3)) < 128


def test_a_second_invocation_is_warm_and_reports_no_init(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")

    answer = client.invoke(FunctionName="hello", Payload=b"{}", LogType="Tail")

    log = base64.b64decode(answer["LogResult"]).decode()
    assert "REPORT RequestId" in log and "Init Duration" not in log
    assert "module loaded" not in log
