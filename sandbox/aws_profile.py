"""The learner's AWS profile in their workstation (~/.aws/credentials and ~/.aws/config), so `aws` works as typed."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from .engine.images import AWSCLI_PLUGINS_CONFIG


@dataclass(frozen=True)
class AwsProfile:
    credentials: str
    config: str


def aws_profile(*, environment: dict[str, str]) -> AwsProfile:
    """The default profile for the key in `environment` (identity.aws_environment_for's variables), pointed at the
    edge listener sandboxes reach through the fence's one hole (`manage.py awsedge`). botocore reads `endpoint_url`
    from the profile as it would the AWS_ENDPOINT_URL variable."""
    return AwsProfile(
        credentials=("[default]\n"
                     f"aws_access_key_id = {environment['AWS_ACCESS_KEY_ID']}\n"
                     f"aws_secret_access_key = {environment['AWS_SECRET_ACCESS_KEY']}\n"),
        config=("[default]\n"
                f"region = {environment['AWS_DEFAULT_REGION']}\n"
                f"endpoint_url = {settings.SANDCLOUD_AWS_SANDBOX_ENDPOINT_URL}\n"),
    )


# Run inside the workstation as the learner, with the files' contents in its environment (never on a command line).
# A file that exists is left alone: a repeated attach writes nothing twice, and what the learner wrote stays theirs.
# The config gets the [plugins] section of the awscli plugins the image carries (sandbox/engine/images.py), if any.
AWS_PROFILE_WRITE = f"""
set -e
umask 077
mkdir -p "$HOME/.aws"
cd "$HOME/.aws"
[ -e credentials ] || printf '%s' "$SANDCLOUD_AWS_CREDENTIALS" > credentials
if [ ! -e config ]; then
  {{ printf '%s' "$SANDCLOUD_AWS_CONFIG"
     if [ -r {AWSCLI_PLUGINS_CONFIG} ]; then echo; cat {AWSCLI_PLUGINS_CONFIG}; fi
  }} > config
fi
"""


def aws_profile_environment(profile: AwsProfile) -> dict[str, str]:
    """The environment AWS_PROFILE_WRITE reads the files from."""
    return {"SANDCLOUD_AWS_CREDENTIALS": profile.credentials, "SANDCLOUD_AWS_CONFIG": profile.config}
