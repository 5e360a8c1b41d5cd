"""ECR lifecycle policies: validated as AWS validates them, evaluated as AWS evaluates them (rules in rulePriority
order; an image belongs to the first rule whose selection it matches, and only that rule may expire it), previewed,
and applied by the periodic tend (tasks.py), each expiry recorded."""
from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from sandbox.awsapi.errors import AwsError

from . import selectors, services
from .errors import InvalidLifecyclePolicy
from .models import Image, ImageExpiry, LifecyclePreview, Repository

logger = logging.getLogger(__name__)
TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed")


def _missing(obj: dict, *names: str) -> None:
    absent = [name for name in names if name not in obj]
    if absent:
        raise InvalidLifecyclePolicy(f"object has missing required properties ({json.dumps(absent)})")


def _integer(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidLifecyclePolicy(f"instance type ({type(value).__name__}) of '{name}' does not match any allowed "
                                     f"primitive type (allowed: [\"integer\"])")
    if value < 1:
        raise InvalidLifecyclePolicy(f"numeric instance of '{name}' is lower than the required minimum (minimum: 1, "
                                     f"found: {value})")
    return value


def _enum(value, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidLifecyclePolicy(f"instance value ({json.dumps(value)}) of '{name}' not found in enum "
                                     f"(possible values: {json.dumps(list(allowed))})")
    return value


def policy_validate(text: str) -> list[dict]:
    """The policy's rules sorted by rulePriority, or InvalidParameterException in the validator's words."""
    try:
        policy = json.loads(text)
    except ValueError:
        raise InvalidLifecyclePolicy("Could not map policyString into LifecyclePolicy.") from None
    if not isinstance(policy, dict):
        raise InvalidLifecyclePolicy("Could not map policyString into LifecyclePolicy.")
    _missing(policy, "rules")
    rules = policy["rules"]
    if not isinstance(rules, list) or not rules:
        raise InvalidLifecyclePolicy("array is too short: must have at least 1 elements but instance has 0 elements")
    for rule in rules:
        if not isinstance(rule, dict):
            raise InvalidLifecyclePolicy("Could not map policyString into LifecyclePolicy.")
        _missing(rule, "rulePriority", "selection", "action")
        _integer(rule["rulePriority"], "rulePriority")
        _missing(rule["action"], "type")
        _enum(rule["action"]["type"], "type", ("expire",))
        selection = rule["selection"]
        _missing(selection, "tagStatus", "countType", "countNumber")
        status = _enum(selection["tagStatus"], "tagStatus", TAG_STATUSES)
        count_type = _enum(selection["countType"], "countType", COUNT_TYPES)
        _integer(selection["countNumber"], "countNumber")
        if count_type == "sinceImagePushed":
            _missing(selection, "countUnit")
            _enum(selection["countUnit"], "countUnit", ("days",))
        elif "countUnit" in selection:
            raise InvalidLifecyclePolicy("countUnit cannot be specified when countType is imageCountMoreThan")
        lists = [selection.get("tagPrefixList"), selection.get("tagPatternList")]
        for each in lists:
            if each is not None and (not isinstance(each, list) or not all(isinstance(t, str) for t in each)):
                raise InvalidLifecyclePolicy("tagPrefixList and tagPatternList must be lists of strings")
        if status == "tagged" and not any(lists):
            raise InvalidLifecyclePolicy("tagPrefixList or tagPatternList must be specified when tagStatus is tagged")
        if status != "tagged" and any(lists):
            raise InvalidLifecyclePolicy("tagPrefixList and tagPatternList can only be used when tagStatus is tagged")
        if all(lists):
            raise InvalidLifecyclePolicy("tagPrefixList and tagPatternList cannot both be specified in one rule")
    priorities = [rule["rulePriority"] for rule in rules]
    if len(set(priorities)) != len(priorities):
        raise InvalidLifecyclePolicy("rulePriority must be unique")
    anys = [rule for rule in rules if rule["selection"]["tagStatus"] == "any"]
    if len(anys) > 1 or (anys and anys[0]["rulePriority"] != max(priorities)):
        raise InvalidLifecyclePolicy("there may be only one rule with tagStatus 'any', and it must have the highest "
                                     "rulePriority value")
    return sorted(rules, key=lambda rule: rule["rulePriority"])


def _selects(selection: dict, tags: list[str]) -> bool:
    status = selection["tagStatus"]
    if status == "untagged":
        return not tags
    if status == "any":
        return True
    if not tags:
        return False
    # Several prefixes (or patterns) select only images that have all of them.
    if selection.get("tagPrefixList"):
        return all(any(tag.startswith(prefix) for tag in tags) for prefix in selection["tagPrefixList"])
    return all(any(fnmatch.fnmatchcase(tag, pattern) for tag in tags) for pattern in selection["tagPatternList"])


@dataclass(frozen=True)
class Expiring:
    image: Image
    tags: list[str]
    rule_priority: int


def policy_evaluate(rules: list[dict], images: list[Image], *, now: dt.datetime) -> list[Expiring]:
    """What the rules expire of `images` (each with `tag_names`, as selectors.images_for gives them)."""
    unclaimed = sorted(images, key=lambda image: (image.pushed_at, image.digest), reverse=True)  # newest first
    expiring: list[Expiring] = []
    for rule in rules:
        selection = rule["selection"]
        chosen = [image for image in unclaimed if _selects(selection, image.tag_names)]
        unclaimed = [image for image in unclaimed if image not in chosen]
        if selection["countType"] == "imageCountMoreThan":
            doomed = chosen[selection["countNumber"]:]
        else:
            cutoff = now - dt.timedelta(days=selection["countNumber"])
            doomed = [image for image in chosen if image.pushed_at < cutoff]
        expiring += [Expiring(image, image.tag_names, rule["rulePriority"]) for image in doomed]
    return expiring


def lifecycle_policy_put(*, repository: Repository, text: str) -> Repository:
    """Validates and sets the repository's policy (the text kept exactly as given, as GetLifecyclePolicy answers it)."""
    policy_validate(text)
    repository.lifecycle_policy = text
    repository.save(update_fields=["lifecycle_policy"])
    return repository


def lifecycle_policy_delete(*, repository: Repository) -> None:
    repository.lifecycle_policy = ""
    repository.save(update_fields=["lifecycle_policy"])


def preview_start(*, repository: Repository, text: str) -> LifecyclePreview:
    rules = policy_validate(text)
    expiring = policy_evaluate(rules, selectors.images_for(repository=repository), now=timezone.now())
    results = [{"digest": each.image.digest, "tags": each.tags, "pushed_at": each.image.pushed_at.isoformat(),
                "rule": each.rule_priority, "size": each.image.size} for each in expiring]
    preview, _ = LifecyclePreview.objects.update_or_create(
        repository=repository, defaults={"policy": text, "results": results, "created": timezone.now()})
    return preview


def lifecycle_apply(*, repository: Repository, now: dt.datetime | None = None) -> list[ImageExpiry]:
    """Expires what the repository's policy says, now; each expiry recorded."""
    now = now or timezone.now()
    if not repository.lifecycle_policy:
        return []
    try:
        rules = policy_validate(repository.lifecycle_policy)
    except InvalidLifecyclePolicy:
        return []  # it was valid when put; nothing can make it invalid since, but never expire on a guess
    expired = []
    for each in policy_evaluate(rules, selectors.images_for(repository=repository), now=now):
        services.image_delete(image=each.image)
        expired.append(ImageExpiry.objects.create(repository=repository, digest=each.image.digest, tags=each.tags,
                                                  size=each.image.size, rule_priority=each.rule_priority,
                                                  expired_at=now))
    with transaction.atomic():
        Repository.objects.filter(pk=repository.pk).update(lifecycle_evaluated=now)
    if expired:
        logger.info("lifecycle policy of %s expired %d image(s)", repository.registry_name, len(expired))
    return expired


def lifecycles_apply() -> int:
    """Every repository with a policy (beat, through tasks.registry_tend_task); the number of images expired."""
    total = 0
    for repository in Repository.objects.exclude(lifecycle_policy="").select_related("account"):
        try:
            total += len(lifecycle_apply(repository=repository))
        except AwsError as error:  # the registry is down: the next tend tries again, the other repositories go on
            logger.warning("lifecycle policy of %s not applied: %s", repository.registry_name, error.message)
    return total
