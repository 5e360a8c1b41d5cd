"""Checks of the ECR lab: read the learner's repositories, the images their pushes recorded, and their lifecycle
policy and its preview, in their own AWS account."""
from __future__ import annotations

import json
import re

from sandbox.awsapi.identity import aws_account_for
from sandbox.registry import selectors
from sandbox.registry.models import Image, LifecyclePreview, Repository

from . import CheckContext, CheckResult
from .docker_labs import answer_read

REPOSITORY = "hello"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REFUSALS = ("cannot be overwritten", "immutable", "tag invalid")


def _repository(ctx: CheckContext) -> Repository | None:
    return selectors.repository_for(account=aws_account_for(user=ctx.sandbox.owner), name=REPOSITORY)


def _no_repository() -> CheckResult:
    return CheckResult(passed=False, message=(
        f"There is no repository called {REPOSITORY} in your AWS account (`aws ecr describe-repositories` lists "
        f"yours). Create it with `aws ecr create-repository --repository-name {REPOSITORY}`."))


def _tagged(repository: Repository, tag: str) -> Image | None:
    return selectors.image_find(repository=repository, tag=tag)


# --- ecr-push-image -------------------------------------------------------------------------------------------------

def repository_created(ctx: CheckContext) -> CheckResult:
    """The repository `hello` exists in the learner's account."""
    repository = _repository(ctx)
    if repository is None:
        return _no_repository()
    return CheckResult(passed=True, message=f"{REPOSITORY} exists: Docker pushes to it as {repository.uri}.")


def image_pushed(ctx: CheckContext) -> CheckResult:
    """`hello:1` was pushed to the repository, and ~/answers/pushed-digest is that image's digest."""
    repository = _repository(ctx)
    if repository is None:
        return _no_repository()
    image = _tagged(repository, "1")
    if image is None:
        return CheckResult(passed=False, message=(
            f"Your repository {REPOSITORY} has no image tagged 1 yet. Log in (aws ecr get-login-password | docker "
            f"login --username AWS --password-stdin <registry>), then `docker tag hello:1 {repository.uri}:1` and "
            f"`docker push {repository.uri}:1`."))
    answer = answer_read(ctx, "~/answers/pushed-digest")
    found = DIGEST.search(answer)
    if found is None:
        return CheckResult(passed=False, fraction=0.5, message=(
            "Your image is pushed. ~/answers/pushed-digest is missing or holds no digest (sha256: and 64 hex "
            "digits): write the imageDigest that `aws ecr describe-images --repository-name hello` gives for the "
            "tag 1."))
    if found.group(0) != image.digest:
        return CheckResult(passed=False, fraction=0.5, message=(
            f"~/answers/pushed-digest names {found.group(0)[:19]}…, but the image tagged 1 in {REPOSITORY} is another "
            f"one. Copy the imageDigest of the tag 1 from `aws ecr describe-images --repository-name hello`."))
    return CheckResult(passed=True, message=(
        f"hello:1 is in your registry as {image.digest[:19]}…: that digest names exactly this image, wherever it is "
        f"pulled."))


def tags_immutable(ctx: CheckContext) -> CheckResult:
    """The repository's tags are immutable, the learner saw a push of the existing tag 1 refused, and pushed the new
    image as 2 (another image than 1's)."""
    repository = _repository(ctx)
    if repository is None:
        return _no_repository()
    if repository.image_tag_mutability != Repository.TagMutability.IMMUTABLE:
        return CheckResult(passed=False, message=(
            f"{REPOSITORY}'s tags are still mutable: `aws ecr put-image-tag-mutability --repository-name "
            f"{REPOSITORY} --image-tag-mutability IMMUTABLE`."))
    problems, fraction = [], 0.25
    refusal = answer_read(ctx, "~/answers/immutable-push.txt")
    if not any(word in refusal.lower() for word in REFUSALS):
        problems.append("~/answers/immutable-push.txt does not hold the refusal of a push of the tag 1: tag a "
                        "new image as <repository URI>:1 and run `docker push <repository URI>:1 2>&1 | tee "
                        "~/answers/immutable-push.txt`.")
    else:
        fraction += 0.375
    first, second = _tagged(repository, "1"), _tagged(repository, "2")
    if second is None:
        problems.append(f"{REPOSITORY} has no image tagged 2: push the new version under a new tag, "
                        f"`docker tag hello:2 {repository.uri}:2 && docker push {repository.uri}:2`.")
    elif first is not None and first.pk == second.pk:
        problems.append("The tags 1 and 2 name the same image: build the changed app as hello:2 (`docker build -t "
                        "hello:2 ~/hello` after editing app.py) and push that as 2.")
    else:
        fraction += 0.375
    if problems:
        return CheckResult(passed=False, message="\n".join(problems), fraction=fraction)
    return CheckResult(passed=True, message=(
        "Tag 1 still names the image you first pushed, whatever is pushed later; the new version is 2."))


def _count_rule(policy_text: str) -> dict | None:
    try:
        rules = json.loads(policy_text).get("rules") or []
    except (ValueError, AttributeError):
        return None
    return next((rule for rule in rules if isinstance(rule, dict)
                 and (rule.get("selection") or {}).get("countType") == "imageCountMoreThan"), None)


def lifecycle_previewed(ctx: CheckContext) -> CheckResult:
    """The repository has a lifecycle policy keeping the newest N images, previewed as it stands, and
    ~/answers/expiring-tags lists the tags that preview would expire."""
    repository = _repository(ctx)
    if repository is None:
        return _no_repository()
    if not repository.lifecycle_policy:
        return CheckResult(passed=False, message=(
            f"{REPOSITORY} has no lifecycle policy yet: write policy.json and run `aws ecr put-lifecycle-policy "
            f"--repository-name {REPOSITORY} --lifecycle-policy-text file://policy.json`."))
    if _count_rule(repository.lifecycle_policy) is None:
        return CheckResult(passed=False, fraction=0.25, message=(
            f"{REPOSITORY}'s lifecycle policy has no rule that keeps a number of images: give it a rule with "
            f"\"countType\": \"imageCountMoreThan\" and \"countNumber\": 1."))
    preview = LifecyclePreview.objects.filter(repository=repository).first()
    if preview is None or preview.policy != repository.lifecycle_policy:
        return CheckResult(passed=False, fraction=0.5, message=(
            f"Preview the policy now in place: `aws ecr start-lifecycle-policy-preview --repository-name "
            f"{REPOSITORY}`, then `aws ecr get-lifecycle-policy-preview --repository-name {REPOSITORY}`."))
    if not preview.results:
        return CheckResult(passed=False, fraction=0.5, message=(
            f"The preview expires nothing: your policy keeps at least as many images as {REPOSITORY} holds. Keep "
            f"only the newest (\"countNumber\": 1), put the policy again and preview it again."))
    expiring = {tag for result in preview.results for tag in result.get("tags") or []}
    answer = set(re.split(r"[\s,]+", answer_read(ctx, "~/answers/expiring-tags"))) - {""}
    if answer != expiring:
        return CheckResult(passed=False, fraction=0.75, message=(
            f"~/answers/expiring-tags says {' '.join(sorted(answer)) or 'nothing'}, which are not the tags the "
            f"preview expires. Save them with `aws ecr get-lifecycle-policy-preview --repository-name {REPOSITORY} "
            f"--query 'previewResults[].imageTags[]' --output text > ~/answers/expiring-tags`."))
    return CheckResult(passed=True, message=(
        f"Right: the policy would expire {', '.join(sorted(expiring))} and keep the newest. The registry applies it "
        f"in the background; a preview shows what goes before anything is deleted."))
