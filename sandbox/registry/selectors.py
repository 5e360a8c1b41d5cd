"""Reads of ECR repositories, always within one account."""
from __future__ import annotations

from django.db.models import QuerySet

from sandbox.awsapi.models import AwsAccount

from .models import Repository


def repositories_for(*, account: AwsAccount) -> QuerySet[Repository]:
    return Repository.objects.filter(account=account).select_related("account").order_by("name")


def repository_for(*, account: AwsAccount, name: str) -> Repository | None:
    return repositories_for(account=account).filter(name=name).first()


def repository_exists(*, account_id: str, name: str) -> bool:
    return Repository.objects.filter(account__account_id=account_id, name=name).exists()


def account_exists(*, account_id: str) -> bool:
    """Whether the account an authorization token names is still open (a closed one's tokens are refused)."""
    return AwsAccount.objects.filter(account_id=account_id).exists()
