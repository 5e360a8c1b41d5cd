"""The ECR API (botocore service `ecr`, JSON 1.1): one method per AWS action, each within the caller's own account;
the edge endpoint (sandbox/awsapi) has parsed and validated the members against botocore's model. Images are read
from what the registry's front recorded as they were pushed."""
from __future__ import annotations

import datetime as dt

from sandbox.awsapi import identity, pagination
from sandbox.awsapi.providers import RequestContext

from . import lifecycle, selectors, services, tokens
from .errors import (ImageNotFound, InvalidParameter, LifecyclePolicyNotFound, LifecyclePolicyPreviewNotFound,
                     RepositoryNotFound)
from .models import Image, LifecyclePreview, Repository, registry_host

DESCRIBE_PAGE = 100  # DescribeRepositories' page when maxResults is not given, as AWS's
IMAGES_PAGE = 100  # ListImages' and DescribeImages'
MUTABILITY_HELP = "Sandcloud does not support tag mutability exclusion filters yet: use MUTABLE or IMMUTABLE."


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


def _filtered(images: list[Image], tag_status: str | None) -> list[Image]:
    if tag_status == "TAGGED":
        return [image for image in images if image.tag_names]
    if tag_status == "UNTAGGED":
        return [image for image in images if not image.tag_names]
    return images


def _paged(output_key: str, items: list, context: RequestContext, *, token, size, key) -> dict:
    page = pagination.paginate(items, token=token, limit=pagination.page_size(size, default=IMAGES_PAGE),
                               scope=f"ecr:{context.operation}:{context.account_id}", key=key,
                               invalid_token=_invalid_token())
    output = {output_key: page.items}
    if page.next_token:
        output["nextToken"] = page.next_token
    return output


def _image_id(image: Image, tag: str | None = None) -> dict:
    return {"imageDigest": image.digest, **({"imageTag": tag} if tag else {})}


def _mutability(value: str | None, exclusions) -> str:
    if value not in (None, *Repository.TagMutability.values) or exclusions:
        raise InvalidParameter(MUTABILITY_HELP)
    return value or Repository.TagMutability.MUTABLE


class EcrApi:
    def get_authorization_token(self, context: RequestContext, *, registryIds=None) -> dict:
        for registry_id in registryIds or []:
            _own_registry(context, registry_id)
        issued = tokens.authorization_token_issue(account_id=context.account_id)
        return {"authorizationData": [{"authorizationToken": issued.token, "expiresAt": issued.expires_at,
                                       "proxyEndpoint": f"http://{registry_host()}"}]}

    # --- repositories ---------------------------------------------------------------------------------------------

    def create_repository(self, context: RequestContext, *, repositoryName, registryId=None, tags=None,
                          imageTagMutability=None, imageTagMutabilityExclusionFilters=None,
                          imageScanningConfiguration=None, encryptionConfiguration=None) -> dict:
        _own_registry(context, registryId, repositoryName)
        mutability = _mutability(imageTagMutability, imageTagMutabilityExclusionFilters)
        encryption = encryptionConfiguration or {}
        encryption_type = encryption.get("encryptionType", "AES256")
        if encryption.get("kmsKey") and encryption_type == "AES256":
            raise InvalidParameter("Invalid parameter at 'encryptionConfiguration': "
                                   "kmsKey can only be specified when encryptionType is 'KMS' or 'KMS_DSSE'")
        repository = services.repository_create(
            account=context.account, name=repositoryName, tag_mutability=mutability,
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
            key=lambda each: each.name, invalid_token=_invalid_token())
        output = {"repositories": [_repository_out(context, each) for each in page.items]}
        if page.next_token:
            output["nextToken"] = page.next_token
        return output

    def delete_repository(self, context: RequestContext, *, repositoryName, registryId=None, force=None) -> dict:
        _own_registry(context, registryId, repositoryName)
        repository = services.repository_delete(account=context.account, name=repositoryName, force=bool(force))
        return {"repository": _repository_out(context, repository)}

    def put_image_tag_mutability(self, context: RequestContext, *, repositoryName, imageTagMutability,
                                 registryId=None, imageTagMutabilityExclusionFilters=None) -> dict:
        repository = _repository(context, repositoryName, registryId)
        mutability = _mutability(imageTagMutability, imageTagMutabilityExclusionFilters)
        services.repository_tag_mutability_put(repository=repository, mutability=mutability)
        return {"registryId": context.account_id, "repositoryName": repositoryName,
                "imageTagMutability": mutability}

    # --- images ---------------------------------------------------------------------------------------------------

    def list_images(self, context: RequestContext, *, repositoryName, registryId=None, nextToken=None,
                    maxResults=None, filter=None) -> dict:  # noqa: A002 - botocore's member name
        repository = _repository(context, repositoryName, registryId)
        images = _filtered(selectors.images_for(repository=repository), (filter or {}).get("tagStatus"))
        ids = sorted(([_image_id(image, tag) for tag in image.tag_names] or [_image_id(image)] for image in images),
                     key=lambda group: group[0]["imageDigest"])
        return _paged("imageIds", [each for group in ids for each in group], context, token=nextToken,
                      size=maxResults, key=lambda each: f"{each['imageDigest']} {each.get('imageTag', '')}")

    def describe_images(self, context: RequestContext, *, repositoryName, registryId=None, imageIds=None,
                        nextToken=None, maxResults=None, filter=None) -> dict:  # noqa: A002
        repository = _repository(context, repositoryName, registryId)
        images = _filtered(selectors.images_for(repository=repository), (filter or {}).get("tagStatus"))
        if imageIds:
            chosen = {}
            for wanted in imageIds:
                digest, tag = wanted.get("imageDigest"), wanted.get("imageTag")
                match = next((image for image in images if (not digest or image.digest == digest)
                              and (not tag or tag in image.tag_names)), None)
                if match is None:
                    raise ImageNotFound(digest=digest, tag=tag, name=repositoryName, registry_id=context.account_id)
                chosen[match.digest] = match
            images = list(chosen.values())
        details = [{"registryId": context.account_id, "repositoryName": repositoryName, "imageDigest": image.digest,
                    "imageSizeInBytes": image.size, "imageManifestMediaType": image.media_type,
                    "imagePushedAt": image.pushed_at, **({"imageTags": image.tag_names} if image.tag_names else {})}
                   for image in sorted(images, key=lambda image: image.digest)]
        return _paged("imageDetails", details, context, token=nextToken, size=maxResults,
                      key=lambda detail: detail["imageDigest"])

    def batch_get_image(self, context: RequestContext, *, repositoryName, imageIds, registryId=None,
                        acceptedMediaTypes=None) -> dict:
        repository = _repository(context, repositoryName, registryId)
        images, failures = [], []
        for wanted in imageIds:
            digest, tag = wanted.get("imageDigest"), wanted.get("imageTag")
            image = selectors.image_find(repository=repository, digest=digest, tag=tag) if digest or tag else None
            names = sorted(image.tags.values_list("name", flat=True)) if image else []
            if image is None or (digest and tag and tag not in names):
                failures.append({"imageId": wanted, "failureCode": "ImageNotFound",
                                 "failureReason": "Requested image not found"})
                continue
            images.append({"registryId": context.account_id, "repositoryName": repositoryName,
                           "imageId": _image_id(image, tag or (names[0] if names else None)),
                           "imageManifest": image.manifest, "imageManifestMediaType": image.media_type})
        return {"images": images, "failures": failures}

    def batch_delete_image(self, context: RequestContext, *, repositoryName, imageIds, registryId=None) -> dict:
        repository = _repository(context, repositoryName, registryId)
        deleted, failures = services.images_delete(repository=repository, image_ids=imageIds)
        return {"imageIds": deleted, "failures": failures}

    # --- lifecycle policies ---------------------------------------------------------------------------------------

    def _policy_out(self, context, repository: Repository, *, evaluated: bool = True) -> dict:
        output = {"registryId": context.account_id, "repositoryName": repository.name,
                  "lifecyclePolicyText": repository.lifecycle_policy}
        if evaluated and repository.lifecycle_evaluated:
            output["lastEvaluatedAt"] = repository.lifecycle_evaluated
        return output

    def _policy_of(self, context, repository: Repository) -> Repository:
        if not repository.lifecycle_policy:
            raise LifecyclePolicyNotFound(name=repository.name, registry_id=context.account_id)
        return repository

    def put_lifecycle_policy(self, context: RequestContext, *, repositoryName, lifecyclePolicyText,
                             registryId=None) -> dict:
        repository = _repository(context, repositoryName, registryId)
        lifecycle.lifecycle_policy_put(repository=repository, text=lifecyclePolicyText)
        return self._policy_out(context, repository, evaluated=False)

    def get_lifecycle_policy(self, context: RequestContext, *, repositoryName, registryId=None) -> dict:
        repository = self._policy_of(context, _repository(context, repositoryName, registryId))
        return self._policy_out(context, repository)

    def delete_lifecycle_policy(self, context: RequestContext, *, repositoryName, registryId=None) -> dict:
        repository = self._policy_of(context, _repository(context, repositoryName, registryId))
        output = self._policy_out(context, repository)
        lifecycle.lifecycle_policy_delete(repository=repository)
        return output

    def start_lifecycle_policy_preview(self, context: RequestContext, *, repositoryName, registryId=None,
                                       lifecyclePolicyText=None) -> dict:
        repository = _repository(context, repositoryName, registryId)
        text = lifecyclePolicyText or self._policy_of(context, repository).lifecycle_policy
        lifecycle.preview_start(repository=repository, text=text)
        return {"registryId": context.account_id, "repositoryName": repositoryName, "lifecyclePolicyText": text,
                "status": "IN_PROGRESS"}

    def get_lifecycle_policy_preview(self, context: RequestContext, *, repositoryName, registryId=None,
                                     imageIds=None, nextToken=None, maxResults=None, filter=None) -> dict:  # noqa
        repository = _repository(context, repositoryName, registryId)
        preview = LifecyclePreview.objects.filter(repository=repository).first()
        if preview is None:
            raise LifecyclePolicyPreviewNotFound(name=repositoryName, registry_id=context.account_id)
        results = [{"imageDigest": each["digest"], "imagePushedAt": dt.datetime.fromisoformat(each["pushed_at"]),
                    "action": {"type": "EXPIRE"}, "appliedRulePriority": each["rule"],
                    **({"imageTags": each["tags"]} if each["tags"] else {})} for each in preview.results]
        if imageIds:
            wanted = {(each.get("imageDigest"), each.get("imageTag")) for each in imageIds}
            results = [each for each in results if any((not d or d == each["imageDigest"]) and
                                                       (not t or t in each.get("imageTags", []))
                                                       for d, t in wanted)]
        output = _paged("previewResults", results, context, token=nextToken, size=maxResults,
                        key=lambda each: each["imageDigest"])
        return {"registryId": context.account_id, "repositoryName": repositoryName,
                "lifecyclePolicyText": preview.policy, "status": "COMPLETE", **output,
                "summary": {"expiringImageTotalCount": len(preview.results)}}
