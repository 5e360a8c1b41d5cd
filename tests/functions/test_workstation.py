"""The issue's commands, typed in a real workstation exactly as a learner types them, with nothing configured."""
from __future__ import annotations

import json

import pytest

from tests.aws_edge import aws_edge, aws_edge_listener  # noqa: F401 - fixtures
from tests.conftest import run_in

pytestmark = pytest.mark.docker

SESSION = r"""
set -e
cat > app.py <<'PY'
def handler(event, context):
    print("hello from the function")
    return {"greeting": "Hello, " + event["name"]}
PY
zip -q fn.zip app.py
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
aws lambda create-function --function-name hello --runtime python3.11 --handler app.handler \
    --zip-file fileb://fn.zip --role arn:aws:iam::$ACCOUNT:role/lab --memory-size 128 --timeout 3 > created.json
aws lambda invoke --function-name hello --payload '{"name":"Ada"}' --cli-binary-format raw-in-base64-out \
    --log-type Tail out.json --query LogResult --output text | base64 -d
echo "---"
cat out.json
echo
echo "---"
aws logs tail /aws/lambda/hello
"""


def test_the_issues_commands_work_as_typed_in_a_workstation(start_sandbox, learner, aws_edge, aws, settings):
    settings.SANDCLOUD = {**settings.SANDCLOUD, "MEMORY_MB": 512}
    aws(learner)  # the functions fixtures: code store, and environments removed afterwards
    sandbox = start_sandbox(learner)

    code, output = run_in(sandbox, SESSION, timeout=120)

    assert code == 0, output
    tail, result, logs = output.split("---\n")
    assert "START RequestId:" in tail and "hello from the function" in tail and "REPORT RequestId:" in tail
    assert json.loads(result) == {"greeting": "Hello, Ada"}
    assert "hello from the function" in logs and "REPORT RequestId:" in logs
