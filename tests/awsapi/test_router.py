"""The router finds the service and operation from what botocore sends: credential scope, target, Action, path."""
from __future__ import annotations

import pytest

from sandbox.awsapi import providers, router
from sandbox.awsapi.errors import AwsError

from .wire import botocore_request


def routed(service, operation, params=None, **kwargs):
    request = botocore_request(service, operation, params or {}, **kwargs)
    model = router.service_for(request)
    return model.service_name, router.operation_for(model, request)


@pytest.mark.parametrize("service,operation,params", [
    ("logs", "DescribeLogGroups", {}),
    ("ecs", "ListClusters", {}),
    ("ecr", "DescribeRepositories", {}),
    ("application-autoscaling", "DescribeScalableTargets", {"ServiceNamespace": "ecs"}),
    ("lambda", "ListFunctions", {}),
    ("lambda", "Invoke", {"FunctionName": "hello"}),
    ("apigateway", "GetRestApis", {}),
    ("apigatewayv2", "GetApis", {}),
    ("scheduler", "ListSchedules", {}),
    ("elbv2", "DescribeLoadBalancers", {}),
    ("ec2", "DescribeVpcs", {}),
])
def test_each_protocol_routes_to_its_service_and_operation(service, operation, params):
    name, route = routed(service, operation, params)
    assert (name, route.operation.name) == (service, operation)


def test_elb_and_elbv2_sign_alike_and_part_by_version():
    # Classic ELB is no Sandcloud service, but a registered provider makes it one: both sign as elasticloadbalancing.
    providers.provider_register("elb", object())
    try:
        assert routed("elbv2", "DescribeLoadBalancers")[0] == "elbv2"
        assert routed("elb", "DescribeLoadBalancers")[0] == "elb"
    finally:
        providers.provider_unregister("elb")


def test_apigateway_v1_and_v2_part_by_path():
    assert routed("apigateway", "GetRestApi", {"restApiId": "a1"})[1].labels == {"restapi_id": "a1"}
    name, route = routed("apigatewayv2", "GetApi", {"ApiId": "a1"})
    assert (name, route.labels) == ("apigatewayv2", {"apiId": "a1"})


def test_rest_json_labels_keep_reserved_characters():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:hello"
    _, route = routed("lambda", "GetFunctionConfiguration", {"FunctionName": arn})
    assert route.operation.name == "GetFunctionConfiguration"
    assert route.labels == {"FunctionName": arn}


def test_an_unknown_json_target_names_the_operation():
    request = botocore_request("logs", "DescribeLogGroups", {})
    request.headers["x-amz-target"] = "Logs_20140328.DescribeEverything"
    with pytest.raises(AwsError) as caught:
        router.operation_for(router.service_for(request), request)
    assert (caught.value.code, caught.value.message) == (
        "UnknownOperationException", "Sandcloud does not support the operation DescribeEverything of service logs yet.")


def test_an_unknown_query_action_is_invalid_action():
    request = botocore_request("elbv2", "DescribeLoadBalancers", {})
    request.body = request.body.replace(b"Action=DescribeLoadBalancers", b"Action=Reboot")
    with pytest.raises(AwsError) as caught:
        router.operation_for(router.service_for(request), request)
    assert caught.value.code == "InvalidAction" and "operation Reboot of service elbv2" in caught.value.message


def test_an_unmatched_rest_path_is_a_404_naming_method_and_path():
    request = botocore_request("lambda", "ListFunctions", {})
    request.path = "/2015-03-31/nothing-here"
    with pytest.raises(AwsError) as caught:
        router.operation_for(router.service_for(request), request)
    assert caught.value.status == 404
    assert "operation GET /2015-03-31/nothing-here of service lambda" in caught.value.message


def test_a_service_sandcloud_does_not_imitate():
    request = botocore_request("dynamodb", "ListTables", {})
    with pytest.raises(AwsError) as caught:
        router.service_for(request)
    assert (caught.value.code, caught.value.message) == (
        "UnknownServiceException", "Sandcloud does not support the service dynamodb yet.")
    assert router.guessed_protocol(request) == "json"


def test_the_region_comes_from_the_credential_scope():
    request = botocore_request("logs", "DescribeLogGroups", {}, region="eu-west-1")
    assert router.credential_scope(request).region == "eu-west-1"


def test_a_service_whose_clients_speak_cbor_is_not_mistaken_for_json():
    # CloudWatch's model lists json and query too, but botocore sends smithy-rpc-v2-cbor, which Sandcloud cannot read.
    providers.provider_register("cloudwatch", object())
    try:
        request = botocore_request("logs", "DescribeLogGroups", {}, signing_service="monitoring")
        request.headers.pop("x-amz-target")
        with pytest.raises(AwsError) as caught:
            router.service_for(request)
        assert caught.value.code == "UnknownServiceException"
    finally:
        providers.provider_unregister("cloudwatch")
