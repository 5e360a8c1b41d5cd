"""The ECR API (botocore service `ecr`, JSON 1.1): one method per AWS action, each within the caller's own account;
the edge endpoint (sandbox/awsapi) has parsed and validated the members against botocore's model."""
from __future__ import annotations

from sandbox.awsapi import identity, pagination
from sandbox.awsapi.providers import RequestContext

from . import distribution, selectors, services, tokens
from .errors import ImageNotFound, InvalidParameter, RepositoryNotFound
from .models import Repository, registry_host

DESCRIBE_PAGE = 100  # DescribeRepositories' page when maxResults is not given, as AWS's
IMAGES_PAGE = 100  # ListImages' and DescribeImages'


def _arn(context: RequestContext, name: str, registry_id: str | None = None) -> str:
    return f"arn:aws:ecr:{context.region}:{registry_id or context.account_id}:repository/{name}"


def _own_registry(context: RequestContext, registry_id: str | None, name: str = "*") -> None:
    """A registryId naming another account is refused as AWS refuses a caller without cross-account permission."""
    if registry_id and registry_id != context.account_id:
        identity.arn_check(account=context.account, arn=_arn(context, name, registry_id),
                           action=f"ecr:{context.operation}")


def _repository_out(context: RequestContext, repository: Repository) -> dict:
    encryption = {"encryptionType": repository.encryption_type}
    if repository.kms_key:
        encryption["kmsKey"] = repository.kms_key
    return {
        "repositoryArn": _arn(context, repository.name),
        "registryId": context.account_id,
        "repositoryName": repository.name,
        "repositoryUri": repository.uri,
        "createdAt": repository.created,
        "imageTagMutability": repository.image_tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": repository.scan_on_push},
        "encryptionConfiguration": encryption,
    }


def _invalid_token() -> InvalidParameter:
    return InvalidParameter("Invalid parameter at 'nextToken': the token is not valid for this request")


def _repository(context: RequestContext, name: str, registry_id: str | None) -> Repository:
    _own_registry(context, registry_id, name)
    repository = selectors.repository_for(account=context.account, name=name)
    if repository is None:
        raise RepositoryNotFound(name=name, registry_id=context.account_id)
    return repository


def _images(repository: Repository, tag_status: str | None) -> list[distribution.Image]:
    """The repository's images by digest; the registry lists only tagged ones, so UNTAGGED finds none yet."""
    if tag_status == "UNTAGGED":
        return []
    return sorted(distribution.images_list(name=repository.registry_name), key=lambda image: image.digest)


class EcrApi:
    def get_authorization_token(self, context: RequestContext, *, registryIds=None) -> dict:
        for registry_id in registryIds or []:
            _own_registry(context, registry_id)
        issued = tokens.authorization_token_issue(account_id=context.account_id)
        return {"authorizationData": [{"authorizationToken": issued.token, "expiresAt": issued.expires_at,
                                       "proxyEndpoint": f"http://{registry_host()}"}]}

    def create_repository(self, context: RequestContext, *, repositoryName, registryId=None, tags=None,
                          imageTagMutability=None, imageTagMutabilityExclusionFilters=None,
                          imageScanningConfiguration=None, encryptionConfiguration=None) -> dict:
        _own_registry(context, registryId, repositoryName)
        if imageTagMutability not in (None, *Repository.TagMutability.values) or imageTagMutabilityExclusionFilters:
            raise InvalidParameter("Sandcloud does not support tag mutability exclusion filters yet: "
                                   "use imageTagMutability MUTABLE or IMMUTABLE.")
        encryption = encryptionConfiguration or {}
        encryption_type = encryption.get("encryptionType", "AES256")
        if encryption.get("kmsKey") and encryption_type == "AES256":
            raise InvalidParameter("Invalid parameter at 'encryptionConfiguration': "
                                   "kmsKey can only be specified when encryptionType is 'KMS' or 'KMS_DSSE'")
        repository = services.repository_create(
            account=context.account, name=repositoryName,
            tag_mutability=imageTagMutability or Repository.TagMutability.MUTABLE,
            scan_on_push=bool((imageScanningConfiguration or {}).get("scanOnPush", False)),
            encryption_type=encryption_type, kms_key=encryption.get("kmsKey", ""))
        return {"repository": _repository_out(context, repository)}

    def describe_repositories(self, context: RequestContext, *, registryId=None, repositoryNames=None,
                              nextToken=None, maxResults=None) -> dict:
        _own_registry(context, registryId)
        repositories = list(selectors.repositories_for(account=context.account))
        if repositoryNames:
            by_name = {each.name: each for each in repositories}
            for name in repositoryNames:
                if name not in by_name:
                    raise RepositoryNotFound(name=name, registry_id=context.account_id)
            repositories = [by_name[name] for name in sorted(set(repositoryNames))]
        page = pagination.paginate(
            repositories, token=nextToken, limit=pagination.page_size(maxResults, default=DESCRIBE_PAGE),
            scope=f"ecr:DescribeRepositories:{context.account_id}:{','.join(repositoryNames or [])}",
            key=lambda each: each.name, invalid_token=InvalidParameter("Invalid parameter at 'nextToken': "
                                                                       "the token is not valid for this request"))
        output = {"repositories": [_repository_out(context, each) for each in page.items]}
        if page.next_token:
            output["nextToken"] = page.next_token
        return output

    def delete_repository(self, context: RequestContext, *, repositoryName, registryId=None, force=None) -> dict:
        _own_registry(context, registryId, repositoryName)
        repository = services.repository_delete(account=context.account, name=repositoryName, force=bool(force))
        return {"repository": _repository_out(context, repository)}

    def list_images(self, context: RequestContext, *, repositoryName, registryId=None, nextToken=None,
                    maxResults=None, filter=None) -> dict:  # noqa: A002 - botocore's member name
        repository = _repository(context, repositoryName, registryId)
        ids = [{"imageDigest": image.digest, "imageTag": tag}
               for image in _images(repository, (filter or {}).get("tagStatus")) for tag in image.tags]
        page = pagination.paginate(ids, token=nextToken, limit=pagination.page_size(maxResults, default=IMAGES_PAGE),
                                   scope=f"ecr:ListImages:{context.account_id}:{repositoryName}",
                                   key=lambda each: f"{each['imageDigest']} {each['imageTag']}",
                                   invalid_token=_invalid_token())
        output = {"imageIds": page.items}
        if page.next_token:
            output["nextToken"] = page.next_token
        return output

    def describe_images(self, context: RequestContext, *, repositoryName, registryId=None, imageIds=None,
                        nextToken=None, maxResults=None, filter=None) -> dict:  # noqa: A002
        repository = _repository(context, repositoryName, registryId)
        images = _images(repository, (filter or {}).get("tagStatus"))
        if imageIds:
            chosen = {}
            for wanted in imageIds:
                digest, tag = wanted.get("imageDigest"), wanted.get("imageTag")
                match = next((image for image in images if (not digest or image.digest == digest)
                              and (not tag or tag in image.tags)), None)
                if match is None:
                    raise ImageNotFound(digest=digest, tag=tag, name=repositoryName, registry_id=context.account_id)
                chosen[match.digest] = match
            images = sorted(chosen.values(), key=lambda image: image.digest)
        page = pagination.paginate(images, token=nextToken,
                                   limit=pagination.page_size(maxResults, default=IMAGES_PAGE),
                                   scope=f"ecr:DescribeImages:{context.account_id}:{repositoryName}",
                                   key=lambda image: image.digest, invalid_token=_invalid_token())
        details = []
        for image in page.items:
            detail = {"registryId": context.account_id, "repositoryName": repositoryName,
                      "imageDigest": image.digest, "imageSizeInBytes": image.size,
                      "imageManifestMediaType": image.media_type}
            if image.tags:
                detail["imageTags"] = list(image.tags)
            if image.pushed_at:
                detail["imagePushedAt"] = image.pushed_at
            details.append(detail)
        output = {"imageDetails": details}
        if page.next_token:
            output["nextToken"] = page.next_token
        return output
