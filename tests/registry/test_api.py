"""ECR through the edge endpoint: real boto3 clients signed with learners' real keys, against the live server,
answered as AWS answers; another learner's key never reaches the first learner's repositories."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from botocore.exceptions import ClientError

from sandbox.registry import tokens

from .conftest import error_of

pytestmark = pytest.mark.django_db(transaction=True)


def raised(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return error_of(caught)


def test_the_authorization_token_is_a_docker_login_for_the_account_valid_12_hours(ecr, account, registry):
    (data,) = ecr.get_authorization_token()["authorizationData"]

    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    assert tokens.authorization_token_account(password=password) == account.account_id
    hours = (data["expiresAt"] - dt.datetime.now(dt.timezone.utc)).total_seconds() / 3600
    assert 11.9 < hours <= 12
    assert data["proxyEndpoint"] == f"http://{registry['process'].host}"


def test_a_new_repository_is_described_as_aws_describes_it(ecr, account, registry):
    created = ecr.create_repository(repositoryName="team/hello", imageTagMutability="IMMUTABLE",
                                    encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/mine"},
                                    imageScanningConfiguration={"scanOnPush": True})["repository"]

    (described,) = ecr.describe_repositories()["repositories"]

    assert described == created
    assert described["repositoryName"] == "team/hello"
    assert described["registryId"] == account.account_id
    assert described["repositoryArn"] == f"arn:aws:ecr:us-east-1:{account.account_id}:repository/team/hello"
    assert described["repositoryUri"] == f"{registry['process'].host}/{account.account_id}/team/hello"
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert described["imageScanningConfiguration"] == {"scanOnPush": True}
    assert described["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": "alias/mine"}


def test_a_repository_is_mutable_and_aes256_encrypted_unless_asked(ecr):
    repository = ecr.create_repository(repositoryName="hello")["repository"]

    assert repository["imageTagMutability"] == "MUTABLE"
    assert repository["encryptionConfiguration"] == {"encryptionType": "AES256"}


def test_a_repository_that_exists_already_is_refused(ecr, account):
    ecr.create_repository(repositoryName="hello")

    assert raised(ecr.create_repository, repositoryName="hello") == (
        "RepositoryAlreadyExistsException",
        f"The repository with name 'hello' already exists in the registry with id '{account.account_id}'")


def test_a_name_docker_would_refuse_is_refused(ecr):
    code, message = raised(ecr.create_repository, repositoryName="Hello World")

    assert code == "ValidationException" and "repositoryName" in message
    assert ecr.describe_repositories()["repositories"] == []


def test_describing_a_missing_repository_by_name_is_not_found(ecr, account):
    ecr.create_repository(repositoryName="hello")

    assert raised(ecr.describe_repositories, repositoryNames=["hello", "missing"]) == (
        "RepositoryNotFoundException",
        f"The repository with name 'missing' does not exist in the registry with id '{account.account_id}'")


def test_describing_by_name_returns_only_those(ecr):
    for name in ("a1", "b2", "c3"):
        ecr.create_repository(repositoryName=name)

    described = ecr.describe_repositories(repositoryNames=["c3", "a1"])["repositories"]

    assert [each["repositoryName"] for each in described] == ["a1", "c3"]


def test_repositories_come_in_pages_the_paginator_follows(ecr):
    for name in ("a1", "b2", "c3", "d4", "e5"):
        ecr.create_repository(repositoryName=name)

    first = ecr.describe_repositories(maxResults=2)
    pages = ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 2})

    assert [each["repositoryName"] for each in first["repositories"]] == ["a1", "b2"] and first["nextToken"]
    assert [[each["repositoryName"] for each in page["repositories"]] for page in pages] == [
        ["a1", "b2"], ["c3", "d4"], ["e5"]]


def test_a_forged_next_token_is_refused(ecr):
    code, _ = raised(ecr.describe_repositories, nextToken="not-a-token")

    assert code == "InvalidParameterException"


def test_deleting_an_empty_repository_removes_it(ecr):
    ecr.create_repository(repositoryName="hello")

    deleted = ecr.delete_repository(repositoryName="hello")["repository"]

    assert deleted["repositoryName"] == "hello"
    assert ecr.describe_repositories()["repositories"] == []


def test_deleting_a_missing_repository_is_not_found(ecr, account):
    assert raised(ecr.delete_repository, repositoryName="hello") == (
        "RepositoryNotFoundException",
        f"The repository with name 'hello' does not exist in the registry with id '{account.account_id}'")


def test_another_learner_neither_sees_nor_deletes_a_repository(ecr, other_ecr, other_account):
    ecr.create_repository(repositoryName="hello")

    assert other_ecr.describe_repositories()["repositories"] == []
    assert raised(other_ecr.delete_repository, repositoryName="hello")[0] == "RepositoryNotFoundException"
    assert [each["repositoryName"] for each in ecr.describe_repositories()["repositories"]] == ["hello"]


def test_another_accounts_registry_id_is_refused(ecr, other_account):
    code, message = raised(ecr.describe_repositories, registryId=other_account.account_id)

    assert code == "AccessDeniedException"
    assert "is not authorized to perform: ecr:DescribeRepositories" in message


def test_ecr_is_not_served_when_it_is_switched_off(ecr):
    from sandbox.awsapi import providers

    providers.provider_unregister("ecr")  # as the app leaves it with SANDCLOUD_REGISTRY_ENABLED=0

    code, message = raised(ecr.describe_repositories)

    assert code == "UnknownOperationException"
    assert message == "Sandcloud does not support the operation DescribeRepositories of service ecr yet."


def test_tag_mutability_with_exclusions_is_refused_as_not_supported_yet(ecr):
    code, message = raised(ecr.create_repository, repositoryName="hello",
                           imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                           imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev-*"}])

    assert code == "InvalidParameterException" and "MUTABLE or IMMUTABLE" in message
    assert ecr.describe_repositories()["repositories"] == []
