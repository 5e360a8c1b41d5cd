"""The edge endpoint end to end: real boto3 clients and the real `aws` CLI, signed with a learner's real key, against
tiny providers registered for three protocols (logs: json 1.1, lambda: rest-json, elbv2: query/XML)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.awsapi import identity, pagination, providers
from sandbox.awsapi.errors import AwsError

pytestmark = pytest.mark.django_db(transaction=True)


class LogsProvider:
    groups = [f"/aws/lambda/fn{i:02d}" for i in range(7)]

    def describe_log_groups(self, context, *, limit=None, nextToken=None, logGroupNamePrefix="", **_):
        names = [g for g in self.groups if g.startswith(logGroupNamePrefix)]
        page = pagination.paginate(names, token=nextToken, limit=pagination.page_size(limit, default=50),
                                   scope=f"logs:DescribeLogGroups:{context.account_id}", key=lambda name: name,
                                   invalid_token=AwsError("InvalidParameterException",
                                                          "The specified nextToken is invalid."))
        out = {"logGroups": [{"logGroupName": name, "arn": f"arn:aws:logs:{context.region}:{context.account_id}:"
                                                           f"log-group:{name}:*"} for name in page.items]}
        if page.next_token:
            out["nextToken"] = page.next_token
        return out


class LambdaProvider:
    functions = ["alpha", "beta", "gamma"]

    def list_functions(self, context, *, Marker=None, MaxItems=None, **_):
        page = pagination.paginate(self.functions, token=Marker, limit=pagination.page_size(MaxItems, default=50),
                                   scope=f"lambda:ListFunctions:{context.account_id}", key=lambda name: name)
        out = {"Functions": [{"FunctionName": name, "MemorySize": 128} for name in page.items]}
        if page.next_token:
            out["NextMarker"] = page.next_token
        return out

    def get_function(self, context, *, FunctionName, Qualifier=None):
        name = FunctionName.rpartition(":function:")[2] or FunctionName
        if name not in self.functions:
            raise AwsError("ResourceNotFoundException", f"Function not found: arn:aws:lambda:{context.region}:"
                                                        f"{context.account_id}:function:{name}", status=404)
        return {"Configuration": {"FunctionName": name, "FunctionArn": f"arn:aws:lambda:{context.region}:"
                                  f"{context.account_id}:function:{name}", "MemorySize": 128}}

    def update_function_configuration(self, context, *, FunctionName, **members):
        return {"FunctionName": FunctionName, **members}

    def update_function_code(self, context, *, FunctionName, ZipFile=None, **_):
        return {"FunctionName": FunctionName, "CodeSize": len(ZipFile or b"")}

    def list_aliases(self, context, **_):
        raise RuntimeError("a bug in a provider, with a secret in its message: hunter2")


class Elbv2Provider:
    def describe_load_balancers(self, context, *, Names=None, PageSize=None, Marker=None):
        names = Names or ["web", "api"]
        return {"LoadBalancers": [{"LoadBalancerName": n, "Scheme": "internet-facing", "LoadBalancerArn":
                                   f"arn:aws:elasticloadbalancing:{context.region}:{context.account_id}:"
                                   f"loadbalancer/app/{n}/50dc6c495c0c9188"} for n in names]}


@pytest.fixture
def served():
    # The apps' real providers are put back afterwards: later tests in this process use them.
    saved = {name: providers._providers.get(name) for name in ("logs", "lambda", "elbv2")}
    for name, provider in (("logs", LogsProvider), ("lambda", LambdaProvider), ("elbv2", Elbv2Provider)):
        providers.provider_register(name, provider)
    yield
    for name, provider in saved.items():
        if provider is None:
            providers.provider_unregister(name)
        else:
            providers.provider_register(name, provider)


@pytest.fixture
def credentials(learner):
    key, secret = identity.access_key_create(user=learner)
    return key, secret


@pytest.fixture
def client(live_server, credentials, served):
    key, secret = credentials

    def make(service, *, secret_key=None, **config):
        return boto3.client(service, endpoint_url=live_server.url + "/aws", region_name="us-east-1",
                            aws_access_key_id=key.access_key_id, aws_secret_access_key=secret_key or secret,
                            config=Config(retries={"max_attempts": 1}, **config))
    return make


def error_of(caught) -> tuple[str, str, int]:
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", ""), caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


# --- json 1.1 (CloudWatch Logs) ------------------------------------------------------------------------------------

def test_logs_pages_through_next_token(client, credentials):
    logs = client("logs")
    first = logs.describe_log_groups(limit=3)
    assert [g["logGroupName"] for g in first["logGroups"]] == LogsProvider.groups[:3]
    assert first["logGroups"][0]["arn"].startswith(f"arn:aws:logs:us-east-1:{credentials[0].account.account_id}:")
    assert first["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == first["ResponseMetadata"]["RequestId"]
    everything = [g["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate(
        PaginationConfig={"PageSize": 2}) for g in page["logGroups"]]
    assert everything == LogsProvider.groups


def test_logs_refuses_a_limit_beyond_the_model(client):
    with pytest.raises(ClientError) as caught:
        client("logs").describe_log_groups(limit=51)
    assert error_of(caught) == ("ValidationException", "1 validation error detected: Value '51' at 'limit' failed to "
                                "satisfy constraint: Member must have value less than or equal to 50", 400)


def test_logs_refuses_a_forged_token(client):
    with pytest.raises(ClientError) as caught:
        client("logs").describe_log_groups(nextToken="made-up")
    assert error_of(caught)[:2] == ("InvalidParameterException", "The specified nextToken is invalid.")


def test_logs_unsupported_operation_is_unknown_operation(client):
    with pytest.raises(ClientError) as caught:
        client("logs").describe_log_streams(logGroupName="/aws/lambda/fn00")
    assert error_of(caught) == ("UnknownOperationException", "Sandcloud does not support the operation "
                                "DescribeLogStreams of service logs yet.", 400)


def test_a_wrong_signature_is_invalid_signature_exception(client):
    with pytest.raises(ClientError) as caught:
        client("logs", secret_key="x" * 40).describe_log_groups()
    assert error_of(caught)[0] == "InvalidSignatureException" and error_of(caught)[2] == 403


# --- rest-json (Lambda) --------------------------------------------------------------------------------------------

def test_lambda_pages_through_marker(client):
    fn = client("lambda")
    first = fn.list_functions(MaxItems=2)
    assert [f["FunctionName"] for f in first["Functions"]] == ["alpha", "beta"]
    second = fn.list_functions(MaxItems=2, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == ["gamma"] and "NextMarker" not in second
    assert [f["FunctionName"] for p in fn.get_paginator("list_functions").paginate() for f in p["Functions"]] == \
        LambdaProvider.functions


def test_lambda_path_parameter_even_as_an_arn(client, credentials):
    fn = client("lambda")
    assert fn.get_function(FunctionName="beta")["Configuration"]["FunctionName"] == "beta"
    arn = f"arn:aws:lambda:us-east-1:{credentials[0].account.account_id}:function:gamma"
    assert fn.get_function(FunctionName=arn)["Configuration"]["FunctionArn"] == arn


def test_lambda_missing_function_is_a_404_resource_not_found(client):
    with pytest.raises(ClientError) as caught:
        client("lambda").get_function(FunctionName="nope")
    code, message, status = error_of(caught)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message.startswith("Function not found: arn:aws:lambda:us-east-1:")


def test_lambda_memory_below_the_model_minimum_is_a_validation_exception(client):
    # boto3 checks minimums itself; turned off so the request reaches Sandcloud, as one from another SDK would.
    with pytest.raises(ClientError) as caught:
        client("lambda", parameter_validation=False).update_function_configuration(FunctionName="alpha",
                                                                                   MemorySize=64)
    assert error_of(caught) == ("ValidationException", "1 validation error detected: Value '64' at 'memorySize' "
                                "failed to satisfy constraint: Member must have value greater than or equal to 128",
                                400)


def test_lambda_unsupported_operation(client):
    with pytest.raises(ClientError) as caught:
        client("lambda").list_layers()
    assert error_of(caught) == ("UnknownOperationException", "Sandcloud does not support the operation ListLayers of "
                                "service lambda yet.", 400)


def test_a_provider_bug_is_an_internal_failure_without_a_traceback(client):
    with pytest.raises(ClientError) as caught:
        client("lambda").list_aliases(FunctionName="alpha")
    code, message, status = error_of(caught)
    assert (code, status) == ("InternalFailure", 500)
    assert "hunter2" not in message and "Traceback" not in message


def test_a_body_over_the_limit_is_refused(client, settings):
    settings.SANDCLOUD_AWS_MAX_REQUEST_BYTES = 4096
    fn = client("lambda")
    assert fn.update_function_code(FunctionName="alpha", ZipFile=b"z" * 1000)["CodeSize"] == 1000
    with pytest.raises(ClientError) as caught:
        fn.update_function_code(FunctionName="alpha", ZipFile=b"z" * 20000)
    code, message, status = error_of(caught)
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert "4096 bytes" in message


# --- query / XML (ELBv2) -------------------------------------------------------------------------------------------

def test_elbv2_describe_load_balancers(client):
    answer = client("elbv2").describe_load_balancers(Names=["web", "db"])
    assert [lb["LoadBalancerName"] for lb in answer["LoadBalancers"]] == ["web", "db"]
    assert answer["ResponseMetadata"]["RequestId"]


def test_elbv2_unsupported_action_is_invalid_action(client):
    with pytest.raises(ClientError) as caught:
        client("elbv2").describe_target_groups()
    assert error_of(caught) == ("InvalidAction", "Sandcloud does not support the operation DescribeTargetGroups of "
                                "service elbv2 yet.", 400)


def test_elbv2_wrong_signature_is_signature_does_not_match(client):
    with pytest.raises(ClientError) as caught:
        client("elbv2", secret_key="y" * 40).describe_load_balancers()
    assert error_of(caught)[0] == "SignatureDoesNotMatch" and error_of(caught)[2] == 403


# --- services Sandcloud does not imitate, and what is never answered ---------------------------------------------

def test_an_unknown_service_answers_in_its_protocols_error_shape(client):
    with pytest.raises(ClientError) as caught:
        client("dynamodb").list_tables()
    code, message, _ = error_of(caught)
    assert code == "UnknownServiceException" and "Sandcloud does not support the service dynamodb yet." == message


def test_an_unsigned_request_is_never_an_html_page(live_server, served):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(live_server.url + "/aws/2015-03-31/functions/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    assert caught.value.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")
    assert json.loads(caught.value.read())["message"] == "Missing Authentication Token"


# --- the real `aws` CLI --------------------------------------------------------------------------------------------

def test_the_aws_cli_lists_functions(live_server, credentials, served):
    key, secret = credentials
    aws = Path(sys.executable).with_name("aws")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": key.access_key_id,
           "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    done = subprocess.run([str(aws), "lambda", "list-functions", "--endpoint-url", live_server.url + "/aws",
                           "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [f["FunctionName"] for f in json.loads(done.stdout)["Functions"]] == LambdaProvider.functions
    done = subprocess.run([str(aws), "logs", "describe-log-streams", "--log-group-name", "g",
                           "--endpoint-url", live_server.url + "/aws"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "UnknownOperationException" in done.stderr and "Sandcloud does not support" in done.stderr


def test_an_unsigned_json_request_for_no_known_service_is_told_to_sign(live_server, served):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(live_server.url + "/aws", data=b"{}", method="POST",
                                     headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                                              "Content-Type": "application/x-amz-json-1.0"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    assert json.loads(caught.value.read())["__type"] == "MissingAuthenticationTokenException"
