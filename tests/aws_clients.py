"""A learner's boto3 client for one service, signed with a real access key of theirs, against the live server."""
from __future__ import annotations

import boto3
from botocore.config import Config

from sandbox.awsapi import identity


def aws_client_for(live_server, user, service: str, **config):
    """A new access key for `user` (at most two are active at once) and a client that signs with it."""
    key, secret = identity.access_key_create(user=user)
    return boto3.client(service, endpoint_url=live_server.url + "/aws", region_name="us-east-1",
                        aws_access_key_id=key.access_key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, **config))
