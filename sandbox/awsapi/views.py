"""The learner's AWS access keys page: see them, create one (its secret shown once), revoke one."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import identity
from .models import AccessKey


def _page(request, *, new_key: AccessKey | None = None, secret: str = ""):
    account = identity.aws_account_for(user=request.user)
    keys = list(identity.access_keys_for(user=request.user))
    environment = identity.aws_environment(access_key=new_key, secret=secret) if new_key else {}
    return render(request, "awsapi/keys.html", {
        "account": account,
        "keys": keys,
        "can_create": sum(key.is_active for key in keys) < identity.ACCESS_KEYS_PER_USER,
        "keys_per_user": identity.ACCESS_KEYS_PER_USER,
        "new_key": new_key,
        "export_lines": "\n".join(f"export {name}={value}" for name, value in environment.items()),
        "endpoint_url": settings.SANDCLOUD_AWS_ENDPOINT_URL,
        "region": settings.SANDCLOUD_AWS_REGION,
    })


@never_cache
@login_required
def access_keys(request):
    return _page(request)


@never_cache  # the answer carries the secret: no cache, no back-button copy, no redirect through the session
@login_required
@require_POST
def access_key_create(request):
    try:
        key, secret = identity.access_key_create(user=request.user)
    except identity.AccessKeyLimitExceeded:
        messages.error(request, "You already have two active keys, the most AWS allows. "
                                "Revoke one you no longer use, then create a new one.")
        return redirect("aws-keys")
    return _page(request, new_key=key, secret=secret)


@never_cache
@login_required
@require_POST
def access_key_revoke(request, access_key_id: str):
    try:
        key = identity.access_key_revoke(user=request.user, access_key_id=access_key_id)
    except identity.AccessKeyNotFound:
        messages.error(request, "You have no access key with that id. Reload the page to see your keys.")
        return redirect("aws-keys")
    messages.success(request, f"Key {key.access_key_id} is revoked: requests signed with it are refused from now on.")
    return redirect("aws-keys")
