"""STS's GetCallerIdentity: who the signing key belongs to. Identity is this package's own business, so the one STS
action a learner needs (their account id, for ARNs they type) is served here rather than by a service app."""
from __future__ import annotations

import hashlib


class StsApi:
    def get_caller_identity(self, context):
        account = context.account
        key = context.access_key
        if key.session_token_hash:
            # Temporary credentials (a Lambda environment's) act as an assumed role, as AWS names them.
            arn = f"arn:aws:sts::{account.account_id}:assumed-role/sandcloud-function/{key.access_key_id}"
            user_id = f"AROA{_digits(account.account_id)}:{key.access_key_id}"
        else:
            arn = account.user_arn
            user_id = f"AIDA{_digits(account.account_id + account.user.get_username())}"
        return {"UserId": user_id, "Account": account.account_id, "Arn": arn}


def _digits(text: str) -> str:
    """A stable unique id in IAM's style (AIDA/AROA + 17 characters) derived from the account, never random."""
    return hashlib.sha256(text.encode()).hexdigest().upper()[:17]
