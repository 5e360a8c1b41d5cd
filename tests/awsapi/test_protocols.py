"""The parsers read what botocore's own serialisers send; botocore's own parsers read what the serialisers answer."""
from __future__ import annotations

import datetime as dt

import pytest

from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.protocols import VALIDATION_ERROR_CODE, parser_for, serializer_for
from sandbox.awsapi.protocols.base import input_validate
from sandbox.awsapi.router import service_model

from .wire import botocore_parse, botocore_request

REQUEST_ID = "6bb1e1b6-6b3c-4c2f-9a4e-0c5e8d9f1a2b"


def parsed(service, operation, params):
    model = service_model(service)
    request = botocore_request(service, operation, params)
    parser = parser_for(model)
    op = model.operation_model(operation)
    if model.protocol == "rest-json":
        found = parser.operation_for(request)
        assert found is not None and found[0].name == operation
        return parser.parse(request, op, found[1])
    return parser.parse(request, op)


def answered(service, operation, output):
    model = service_model(service)
    response = serializer_for(model).serialize(output, model.operation_model(operation), REQUEST_ID)
    return response, botocore_parse(service, operation, response)


def refused(service, operation, error):
    model = service_model(service)
    response = serializer_for(model).serialize_error(error, model.operation_model(operation), REQUEST_ID)
    return response, botocore_parse(service, operation, response)


# --- json 1.1 ------------------------------------------------------------------------------------------------------

def test_json_request_members_arrive_as_botocore_sent_them():
    params = {"logGroupNamePrefix": "/aws/lambda/", "limit": 5, "nextToken": "abc"}
    assert parsed("logs", "DescribeLogGroups", params) == params


def test_json_timestamps_and_nested_lists_are_typed():
    pulled = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert parsed("ecs", "SubmitTaskStateChange", {"cluster": "c", "pullStartedAt": pulled}) == {
        "cluster": "c", "pullStartedAt": pulled}
    params = {"logGroupName": "g", "logStreamName": "s",
              "logEvents": [{"timestamp": 1767322800000, "message": "hello"}]}
    assert parsed("logs", "PutLogEvents", params) == params


def test_json_members_the_model_does_not_know_are_dropped():
    request = botocore_request("logs", "DescribeLogGroups", {"limit": 5})
    request.body = b'{"limit": 5, "surprise": true}'
    model = service_model("logs")
    assert parser_for(model).parse(request, model.operation_model("DescribeLogGroups")) == {"limit": 5}


def test_json_response_reads_back_in_botocore():
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    response, result = answered("ecr", "DescribeRepositories", {
        "repositories": [{"repositoryName": "app", "createdAt": created, "repositoryUri": "x/app"}]})
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert result["repositories"][0]["repositoryName"] == "app"
    assert result["repositories"][0]["createdAt"] == created
    assert result["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_json_error_is_type_and_message():
    response, result = refused("logs", "DescribeLogGroups",
                               AwsError("ResourceNotFoundException", "The specified log group does not exist."))
    assert response.status == 400
    assert result["Error"] == {"Code": "ResourceNotFoundException",
                               "Message": "The specified log group does not exist."}


# --- rest-json ---------------------------------------------------------------------------------------------------

def test_restjson_path_query_and_body_members():
    assert parsed("lambda", "GetFunction", {"FunctionName": "hello", "Qualifier": "$LATEST"}) == {
        "FunctionName": "hello", "Qualifier": "$LATEST"}
    assert parsed("lambda", "ListFunctions", {"Marker": "m", "MaxItems": 10}) == {"Marker": "m", "MaxItems": 10}
    assert parsed("lambda", "UpdateFunctionConfiguration", {"FunctionName": "hello", "MemorySize": 256}) == {
        "FunctionName": "hello", "MemorySize": 256}


def test_restjson_an_arn_in_the_path_is_decoded():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:hello"
    assert parsed("lambda", "GetFunction", {"FunctionName": arn}) == {"FunctionName": arn}


def test_restjson_headers_and_blob_payload():
    out = parsed("lambda", "Invoke", {"FunctionName": "hello", "InvocationType": "Event", "LogType": "Tail",
                                      "Payload": b'{"name": "Ada"}'})
    assert out == {"FunctionName": "hello", "InvocationType": "Event", "LogType": "Tail",
                   "Payload": b'{"name": "Ada"}'}


def test_restjson_blob_in_a_json_body_is_decoded():
    out = parsed("lambda", "UpdateFunctionCode", {"FunctionName": "hello", "ZipFile": b"PK\x03\x04zip"})
    assert out["ZipFile"] == b"PK\x03\x04zip"


def test_restjson_more_specific_template_wins():
    # /2015-03-31/functions/{FunctionName}/configuration must not be read as GetFunction of "configuration".
    assert parsed("lambda", "GetFunctionConfiguration", {"FunctionName": "f"}) == {"FunctionName": "f"}
    assert parsed("apigatewayv2", "GetRoutes", {"ApiId": "a1"}) == {"ApiId": "a1"}


def test_restjson_response_status_headers_and_payload():
    response, result = answered("lambda", "Invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                                     "LogResult": "U1RBUlQ=", "Payload": b'{"errorMessage":"x"}'})
    assert response.status == 200
    assert result["FunctionError"] == "Unhandled" and result["LogResult"] == "U1RBUlQ="
    assert response.body == b'{"errorMessage":"x"}'  # the raw payload, not wrapped in JSON
    response, _ = answered("lambda", "DeleteAlias", {})
    assert response.status == 204 and response.body == b""
    response, result = answered("lambda", "CreateFunction", {"FunctionName": "hello", "MemorySize": 128})
    assert response.status == 201 and result["MemorySize"] == 128


def test_restjson_error_uses_the_models_message_member_and_error_type_header():
    response, result = refused("lambda", "GetFunction", AwsError(
        "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope",
        status=404))
    assert response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert b'"Message"' in response.body  # Lambda's shapes spell it with a capital M
    assert result["Error"]["Code"] == "ResourceNotFoundException"
    assert result["Error"]["Message"].startswith("Function not found")
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 404


# --- query / XML ---------------------------------------------------------------------------------------------------

def test_query_lists_and_structures():
    params = {"Names": ["a", "b"], "PageSize": 2, "Marker": "m"}
    assert parsed("elbv2", "DescribeLoadBalancers", params) == params
    params = {"Name": "web", "Subnets": ["s1", "s2"], "Tags": [{"Key": "k", "Value": "v"}], "Type": "application"}
    assert parsed("elbv2", "CreateLoadBalancer", params) == params


def test_query_response_reads_back_in_botocore():
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    response, result = answered("elbv2", "DescribeLoadBalancers", {
        "LoadBalancers": [{"LoadBalancerName": "web", "CreatedTime": created, "Scheme": "internet-facing",
                           "AvailabilityZones": [{"ZoneName": "us-east-1a", "SubnetId": "s1"}]}],
        "NextMarker": "n"})
    assert response.headers["Content-Type"] == "text/xml"
    lb = result["LoadBalancers"][0]
    assert lb["LoadBalancerName"] == "web" and lb["CreatedTime"] == created
    assert lb["AvailabilityZones"] == [{"ZoneName": "us-east-1a", "SubnetId": "s1"}]
    assert result["NextMarker"] == "n"
    assert result["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_query_error_is_error_response_xml():
    response, result = refused("elbv2", "DescribeLoadBalancers",
                               AwsError("LoadBalancerNotFound", "One or more load balancers not found"))
    assert b"<ErrorResponse" in response.body and b"<Type>Sender</Type>" in response.body
    assert result["Error"]["Code"] == "LoadBalancerNotFound"
    assert result["Error"]["Message"] == "One or more load balancers not found"
    assert result["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_ec2_flattened_lists_and_item_responses():
    assert parsed("ec2", "DescribeInstances", {"InstanceIds": ["i-1", "i-2"], "MaxResults": 5}) == {
        "InstanceIds": ["i-1", "i-2"], "MaxResults": 5}
    _, result = answered("ec2", "DescribeVpcs", {"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16",
                                                           "IsDefault": True}]})
    assert result["Vpcs"] == [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "IsDefault": True}]
    response, result = refused("ec2", "DescribeVpcs", AwsError("InvalidVpcID.NotFound", "The vpc ID 'x' does not exist"))
    assert result["Error"]["Code"] == "InvalidVpcID.NotFound"


# --- validation in AWS's words -------------------------------------------------------------------------------------

def validation_message(service, operation, params):
    model = service_model(service)
    with pytest.raises(AwsError) as caught:
        input_validate(model.operation_model(operation).input_shape, params,
                       error_code=VALIDATION_ERROR_CODE[model.protocol])
    return caught.value


def test_a_range_is_reported_as_aws_reports_it():
    error = validation_message("lambda", "UpdateFunctionConfiguration", {"FunctionName": "f", "MemorySize": 64})
    assert error.code == "ValidationException" and error.status == 400
    assert error.message == ("1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: "
                             "Member must have value greater than or equal to 128")


def test_several_errors_are_counted_and_joined():
    error = validation_message("lambda", "CreateFunction", {"FunctionName": "f", "Runtime": "cobol", "Timeout": 0})
    assert error.message.startswith("4 validation errors detected: ")
    assert "Value null at 'role' failed to satisfy constraint: Member must not be null" in error.message
    assert "Value 'cobol' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [" \
        in error.message
    assert "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1" \
        in error.message


def test_length_and_pattern():
    error = validation_message("logs", "CreateLogGroup", {"logGroupName": ""})
    assert "Member must have length greater than or equal to 1" in error.message
    error = validation_message("lambda", "GetFunction", {"FunctionName": "bad name!"})
    assert "at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern" \
        in error.message


def test_query_protocol_says_validation_error():
    error = validation_message("elbv2", "DescribeLoadBalancers", {"PageSize": 500})
    assert error.code == "ValidationError"
    assert "Member must have value less than or equal to 400" in error.message


def test_a_wrongly_typed_member_is_a_serialization_exception():
    error = validation_message("logs", "DescribeLogGroups", {"limit": "ten"})
    assert error.code == "SerializationException"


def test_valid_input_passes():
    model = service_model("lambda")
    input_validate(model.operation_model("GetFunction").input_shape, {"FunctionName": "hello"})
