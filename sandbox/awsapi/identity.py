"""Accounts and access keys: creating, revoking and reading them, keeping secrets encrypted, and ARN ownership."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .errors import AwsError
from .models import AccessKey, AwsAccount

logger = logging.getLogger(__name__)

# IAM allows two access keys per user, so a learner can rotate: create the new one, switch, revoke the old one.
ACCESS_KEYS_PER_USER = 2
# AWS's key ids are "AKIA" and 16 characters of the base-32 alphabet; secrets are 40 characters of base 64.
ACCESS_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


class AccessKeyLimitExceeded(AwsError):
    def __init__(self):
        super().__init__("LimitExceeded", f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}",
                         status=409)


class AccessKeyNotFound(AwsError):
    def __init__(self, access_key_id: str):
        super().__init__("NoSuchEntity", f"The Access Key with id {access_key_id} cannot be found.", status=404)


# --- Accounts -----------------------------------------------------------------------------------------------------

def _account_id() -> str:
    return str(10**11 + secrets.randbelow(9 * 10**11))  # 12 digits, the first never 0


def aws_account_for(*, user: AbstractBaseUser) -> AwsAccount:
    """The learner's AWS account, created the first time anything asks for it."""
    account = AwsAccount.objects.filter(user=user).select_related("user").first()
    if account is not None:
        return account
    for _ in range(10):
        try:
            with transaction.atomic():
                account = AwsAccount.objects.create(user=user, account_id=_account_id())
        except IntegrityError:
            # Either another request created this learner's account first, or the random id was taken.
            account = AwsAccount.objects.filter(user=user).select_related("user").first()
            if account is not None:
                return account
            continue
        logger.info("AWS account %s created for user %s", account.account_id, user.pk)
        return account
    raise RuntimeError("could not draw an unused AWS account id in 10 tries")


# --- Secrets at rest ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _cipher_for(keys: tuple[str, ...]) -> MultiFernet:
    def fernet(material: str) -> Fernet:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sandcloud.awsapi",
                       info=b"access key secrets").derive(material.encode())
        return Fernet(base64.urlsafe_b64encode(derived))

    return MultiFernet([fernet(key) for key in keys])


def _cipher() -> MultiFernet:
    """The first key encrypts; every key decrypts, so the site's key can be rotated the way Django rotates its own."""
    keys = [settings.SANDCLOUD_AWS_KEY_ENCRYPTION_KEY] if settings.SANDCLOUD_AWS_KEY_ENCRYPTION_KEY else []
    keys += [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return _cipher_for(tuple(keys))


def _secret_encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def access_key_secret(*, access_key: AccessKey) -> str | None:
    """The key's secret, for verifying a signature; None when no configured key decrypts it any more."""
    try:
        return _cipher().decrypt(access_key.secret_encrypted.encode()).decode()
    except InvalidToken:
        logger.warning("access key %s cannot be decrypted with the configured keys", access_key.access_key_id)
        return None


# --- Access keys --------------------------------------------------------------------------------------------------

def access_keys_for(*, user: AbstractBaseUser) -> QuerySet[AccessKey]:
    """All the learner's long-term keys, revoked ones too, newest first (temporary credentials are not listed)."""
    return AccessKey.objects.filter(account__user=user, session_token_hash="").order_by("-created", "-pk")


def aws_account_close(*, user: AbstractBaseUser) -> bool:
    """Deletes the learner's AWS account and everything in it: keys, and every service's resources, which hang off the
    account and go with it (each service app removes what lives outside the database, e.g. containers, on pre_delete).
    Returns whether there was one."""
    account = AwsAccount.objects.filter(user=user).first()
    if account is None:
        return False
    for key_id in account.access_keys.values_list("access_key_id", flat=True):
        access_key_forget(key_id)
    account.delete()
    logger.info("AWS account %s closed", account.account_id)
    return True


def session_credentials_create(*, account: AwsAccount, hours: float = 12) -> tuple[AccessKey, str, str]:
    """Temporary credentials for the account, as STS issues them (an ASIA… key id, a secret and a session token), for
    a platform-run workload such as a Lambda execution environment. Returns (key, secret, session token); the secret
    and token are returned this once. They do not count towards the learner's two access keys."""
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))
    token = secrets.token_urlsafe(96)
    for _ in range(5):
        access_key_id = "ASIA" + "".join(secrets.choice(ACCESS_KEY_ID_ALPHABET) for _ in range(16))
        try:
            with transaction.atomic():
                key = AccessKey.objects.create(
                    account=account, access_key_id=access_key_id, secret_encrypted=_secret_encrypt(secret),
                    session_token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    expires=timezone.now() + timedelta(hours=hours))
            break
        except IntegrityError:
            continue
    else:
        raise RuntimeError("could not draw an unused access key id in 5 tries")
    key.account = account
    return key, secret, token


def session_credentials_delete(*, access_key_id: str) -> None:
    AccessKey.objects.filter(access_key_id=access_key_id).exclude(session_token_hash="").delete()


def session_credentials_expire(*, now=None) -> int:
    """Removes temporary credentials past their expiry (the reaper's job)."""
    now = now or timezone.now()
    return AccessKey.objects.exclude(session_token_hash="").filter(expires__lt=now).delete()[0]


def session_token_matches(*, access_key: AccessKey, token: str) -> bool:
    return hmac.compare_digest(access_key.session_token_hash, hashlib.sha256(token.encode()).hexdigest())


_signing_cache: dict[str, tuple[str, AccessKey | None, str | None]] = {}
SIGNING_CACHE_SIZE = 10_000


def access_key_for_signing(*, access_key_id: str) -> AccessKey | None:
    """The active key with this id and its account and user, or None: revoked and unknown keys sign nothing.

    Cached per process under the key's epoch, which revoking (or deleting) the key bumps, so a revoked key stops
    signing on the very next request in every process."""
    return _signing_entry(access_key_id)[0]


def access_key_signing_secret(*, access_key: AccessKey) -> str | None:
    """access_key_secret, decrypted once per process and epoch."""
    cached = _signing_cache.get(access_key.access_key_id)
    if cached is not None and cached[1] is access_key and cached[2] is not None:
        return cached[2]
    return access_key_secret(access_key=access_key)


def _signing_entry(access_key_id: str) -> tuple[AccessKey | None, str | None]:
    from .epochs import epoch_read

    epoch = epoch_read(f"access-key:{access_key_id}")
    cached = _signing_cache.get(access_key_id)
    if epoch is not None and cached is not None and cached[0] == epoch:
        return cached[1], cached[2]
    key = (AccessKey.objects.select_related("account__user")
           .filter(access_key_id=access_key_id, status=AccessKey.Status.ACTIVE).first())
    secret = access_key_secret(access_key=key) if key is not None else None
    if epoch is not None and key is not None:
        if len(_signing_cache) >= SIGNING_CACHE_SIZE:
            _signing_cache.clear()
        _signing_cache[access_key_id] = (epoch, key, secret)
    return key, secret


def access_key_forget(access_key_id: str) -> None:
    """Every process drops its cached copy of the key after the current transaction commits."""
    from .epochs import epoch_bump

    _signing_cache.pop(access_key_id, None)
    epoch_bump(f"access-key:{access_key_id}")


def access_key_create(*, user: AbstractBaseUser) -> tuple[AccessKey, str]:
    """A new active key and its secret, which is returned this once and kept only encrypted.

    Raises AccessKeyLimitExceeded when the learner already has two active keys.
    """
    account = aws_account_for(user=user)
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))
    with transaction.atomic():
        # The lock makes the count and the insert one step, so two clicks at once cannot make a third key.
        AwsAccount.objects.select_for_update().filter(pk=account.pk).first()
        if account.access_keys.filter(status=AccessKey.Status.ACTIVE, session_token_hash="").count() \
                >= ACCESS_KEYS_PER_USER:
            raise AccessKeyLimitExceeded()
        for _ in range(5):
            access_key_id = "AKIA" + "".join(secrets.choice(ACCESS_KEY_ID_ALPHABET) for _ in range(16))
            try:
                with transaction.atomic():
                    key = AccessKey.objects.create(account=account, access_key_id=access_key_id,
                                                   secret_encrypted=_secret_encrypt(secret))
                break
            except IntegrityError:
                continue
        else:
            raise RuntimeError("could not draw an unused access key id in 5 tries")
    key.account = account
    logger.info("access key %s created for AWS account %s", key.access_key_id, account.account_id)
    return key, secret


def access_key_revoke(*, user: AbstractBaseUser, access_key_id: str) -> AccessKey:
    """Makes the key unusable at once and for good; revoking a revoked key changes nothing.

    Raises AccessKeyNotFound for a key that is not this learner's (another learner's key is not even named).
    """
    with transaction.atomic():
        key = AccessKey.objects.select_for_update().filter(account__user=user, access_key_id=access_key_id).first()
        if key is None:
            raise AccessKeyNotFound(access_key_id)
        if key.is_active:
            key.status, key.revoked = AccessKey.Status.INACTIVE, timezone.now()
            key.save(update_fields=["status", "revoked"])
            access_key_forget(key.access_key_id)
            logger.info("access key %s revoked", key.access_key_id)
    return key


def access_key_mark_used(*, access_key: AccessKey, service: str, region: str, now=None) -> None:
    """Records when and where the key last signed a request, at most once a minute, so that a busy client does not
    turn every request into a database write (IAM itself reports last use only approximately)."""
    now = now or timezone.now()
    if access_key.last_used and (now - access_key.last_used).total_seconds() < 60 \
            and access_key.last_used_service == service and access_key.last_used_region == region:
        return
    AccessKey.objects.filter(pk=access_key.pk).update(last_used=now, last_used_service=service[:64],
                                                      last_used_region=region[:32])
    access_key.last_used, access_key.last_used_service, access_key.last_used_region = now, service, region


# --- ARNs ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account_id: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account_id}:{self.resource}"


def arn_parse(arn: str) -> Arn | None:
    """The parts of `arn:partition:service:region:account-id:resource`, or None when it is not shaped like one."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        return None
    return Arn(*parts[1:])


def arn_for(*, account: AwsAccount, service: str, region: str, resource: str) -> str:
    """An ARN in the learner's account, e.g. arn_for(..., service="lambda", resource="function:hello")."""
    return str(Arn("aws", service, region, account.account_id, resource))


def arn_check(*, account: AwsAccount, arn: str, action: str = "", code: str = "AccessDeniedException") -> Arn | None:
    """Refuses an ARN that names another account, as AWS refuses a caller with no cross-account permission.

    `action` is the IAM action in AWS's spelling ("lambda:GetFunction", "iam:PassRole"); `code` is the service's
    word for it ("AccessDeniedException" for the JSON protocols, "AccessDenied" for query services). An ARN with no
    account (an S3 object) or AWS's own ("arn:aws:iam::aws:policy/...") passes. Returns the parsed ARN; a string
    that is not an ARN at all returns None, for the service's own validation to report in its words.
    """
    parsed = arn_parse(arn)
    if parsed is None or parsed.account_id in ("", "aws", account.account_id):
        return parsed
    if action:
        message = (f"User: {account.user_arn} is not authorized to perform: {action} on resource: {arn} "
                   f"because no resource-based policy allows the {action} action")
    else:
        message = f"User: {account.user_arn} is not authorized to perform this operation on resource: {arn}"
    raise AwsError(code, message, status=403)


# --- What a client needs ------------------------------------------------------------------------------------------

def aws_environment(*, access_key: AccessKey, secret: str) -> dict[str, str]:
    """The environment variables that point the `aws` CLI and boto3 at Sandcloud with this key."""
    return {
        "AWS_ACCESS_KEY_ID": access_key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": settings.SANDCLOUD_AWS_REGION,
        "AWS_ENDPOINT_URL": settings.SANDCLOUD_AWS_ENDPOINT_URL,
    }


def aws_environment_for(*, user: AbstractBaseUser) -> dict[str, str]:
    """The learner's credentials as environment variables: their newest active key, or a new one if they have none
    (for workstations and `manage.py awscreds`, which hand the secret to the learner's own shell)."""
    for key in access_keys_for(user=user).filter(status=AccessKey.Status.ACTIVE):
        secret = access_key_secret(access_key=key)
        if secret is not None:
            return aws_environment(access_key=key, secret=secret)
    key, secret = access_key_create(user=user)
    return aws_environment(access_key=key, secret=secret)
