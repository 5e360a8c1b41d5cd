"""What the ECR console pages show beyond the API's reads: sizes against the quota, the lifecycle policy's preview
as of now, and the commands a learner types to log in, tag and push."""
from __future__ import annotations

import json
from dataclasses import dataclass

from django.utils import timezone

from . import lifecycle, selectors
from .errors import InvalidParameter
from .models import Repository, registry_host


@dataclass
class Usage:
    used: int
    quota: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.quota)) if self.quota else 0


def usage_for(*, account) -> Usage:
    used = selectors.account_storage_bytes(account_id=account.account_id) if account else 0
    return Usage(used=used, quota=selectors.quota_bytes())


def push_commands(*, repository: Repository | None, tag: str = "latest") -> dict[str, str]:
    """The commands, exactly, for this repository (a placeholder URI before there is one)."""
    uri = repository.uri if repository else f"{registry_host()}/<account id>/<repository>"
    return {
        "login": f"aws ecr get-login-password | docker login --username AWS --password-stdin {registry_host()}",
        "tag": f"docker tag my-image:{tag} {uri}:{tag}",
        "push": f"docker push {uri}:{tag}",
        "pull": f"docker pull {uri}:{tag}",
    }


def policy_pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


def preview_now(*, repository: Repository, images) -> tuple[list, str]:
    """(what the policy would expire now, by digest, with its rule; a problem in words, or "")."""
    if not repository.lifecycle_policy:
        return [], ""
    try:
        rules = lifecycle.policy_validate(repository.lifecycle_policy)
    except InvalidParameter as error:
        return [], error.message
    return lifecycle.policy_evaluate(rules, images, now=timezone.now()), ""
