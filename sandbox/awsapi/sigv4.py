"""Verifies AWS Signature Version 4 on incoming requests with botocore's own signer, answering as AWS does."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from botocore.auth import SIGV4_TIMESTAMP, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from django.utils import timezone

from . import identity
from .errors import AwsError
from .models import AccessKey

logger = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)
MAX_PRESIGNED_EXPIRES = 604800  # a week, as AWS allows

# The same failure has a different name in each protocol family; the texts are AWS's own.
_SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your "
                       "AWS Secret Access Key and signing method. Consult the service documentation for details.")
_INVALID_TOKEN = "The security token included in the request is invalid."
_EXPIRED_TOKEN = "The security token included in the request is expired"
_ERRORS = {
    # json 1.0/1.1 and rest-json (Lambda, ECS, ECR, Logs, API Gateway, Scheduler)
    "json": {
        "missing": ("MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
        "incomplete": ("IncompleteSignatureException", 400, None),
        "unknown_key": ("UnrecognizedClientException", 403, _INVALID_TOKEN),
        "signature": ("InvalidSignatureException", 403, _SIGNATURE_MISMATCH),
        "time": ("InvalidSignatureException", 403, None),
        "expired_token": ("ExpiredTokenException", 403, _EXPIRED_TOKEN),
    },
    # query with XML answers (ELBv2, IAM, STS) and rest-xml outside S3
    "query": {
        "missing": ("MissingAuthenticationToken", 403, "Request is missing Authentication Token"),
        "incomplete": ("IncompleteSignature", 400, None),
        "unknown_key": ("InvalidClientTokenId", 403, _INVALID_TOKEN),
        "signature": ("SignatureDoesNotMatch", 403, _SIGNATURE_MISMATCH),
        "time": ("SignatureDoesNotMatch", 403, None),
        "expired_token": ("ExpiredToken", 403, _EXPIRED_TOKEN),
    },
    # EC2 names every credential failure AuthFailure and every time failure RequestExpired
    "ec2": {
        "missing": ("MissingAuthenticationToken", 401,
                    "The request must contain either a valid (registered) AWS access key ID or X.509 certificate."),
        "incomplete": ("IncompleteSignature", 400, None),
        "unknown_key": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
        "signature": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
        "time": ("RequestExpired", 400, "Request has expired."),
        "expired_token": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
    },
}
_FAMILY = {"json": "json", "rest-json": "json", "query": "query", "rest-xml": "query", "ec2": "ec2",
           "smithy-rpc-v2-cbor": "json"}  # CBOR names its errors as the JSON protocols do


def _error(protocol: str, kind: str, message: str | None = None) -> AwsError:
    code, status, fixed = _ERRORS[_FAMILY.get(protocol, "json")][kind]
    return AwsError(code, fixed or message or "", status=status)


@dataclass(frozen=True)
class CredentialScope:
    """`AKID/20261201/us-east-1/lambda/aws4_request`: who signed, and for which region and service."""
    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class _Signed:
    scope: CredentialScope
    signed_headers: list[str]
    signature: str
    timestamp: str
    expires: int | None  # presigned URLs only
    presigned: bool


def _headers_lower(headers) -> dict[str, str]:
    # Bytes are taken as they came off the wire (HTTP headers are Latin-1), as botocore's own prepared requests hold.
    return {(name.decode("latin-1") if isinstance(name, bytes) else name).lower():
            value.decode("latin-1") if isinstance(value, bytes) else value for name, value in headers.items()}


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    # Decoded here and re-encoded by botocore, so the canonical query is the same however the client escaped it.
    # '+' stays a plus: SigV4 clients send a space as %20.
    pairs = []
    for part in query_string.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _scope_parse(credential: str, protocol: str) -> CredentialScope:
    parts = credential.split("/")
    if len(parts) != 5:
        raise _error(protocol, "incomplete", "Credential must have exactly 5 slash-delimited elements, "
                                             f"e.g. keyid/date/region/service/term, got '{credential}'")
    if parts[4] != "aws4_request":
        raise _error(protocol, "incomplete",
                     f"Credential should be scoped with a valid terminator: 'aws4_request', not '{parts[4]}'.")
    return CredentialScope(*parts[:4])


def _header_timestamp(headers: dict[str, str]) -> str | None:
    if headers.get("x-amz-date"):
        return headers["x-amz-date"].strip()
    if headers.get("date"):
        try:
            return parsedate_to_datetime(headers["date"]).astimezone(dt.timezone.utc).strftime(SIGV4_TIMESTAMP)
        except (TypeError, ValueError):
            return headers["date"].strip()
    return None


def _parse_authorization(value: str, headers: dict[str, str], protocol: str) -> _Signed:
    algorithm, _, rest = value.strip().partition(" ")
    fields = {}
    for item in re.split(r"[,\s]+", rest.strip()):
        name, sep, field_value = item.partition("=")
        if sep:
            fields[name] = field_value
    timestamp = _header_timestamp(headers)
    if algorithm != ALGORITHM and "Credential" not in fields:
        # SigV2 ("AWS AKID:signature"), SigV4a or garbage: AWS lists what a SigV4 header would have needed.
        fields = {}
    missing = [f"Authorization header requires '{name}' parameter." for name in ("Credential", "Signature",
                                                                                    "SignedHeaders")
               if name not in fields]
    if timestamp is None:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise _error(protocol, "incomplete", " ".join(missing) + f" Authorization={value}")
    if algorithm != ALGORITHM:
        raise _error(protocol, "incomplete", f"Unsupported AWS 'algorithm': '{algorithm}'")
    return _Signed(scope=_scope_parse(fields["Credential"], protocol),
                   signed_headers=[h for h in fields["SignedHeaders"].lower().split(";") if h],
                   signature=fields["Signature"], timestamp=timestamp, expires=None, presigned=False)


def _parse_presigned(query: dict[str, str], protocol: str) -> _Signed:
    missing = [name for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders",
                                 "X-Amz-Date") if not query.get(name)]
    if missing:
        raise _error(protocol, "incomplete", " ".join(f"AWS query-string parameters must include '{name}'."
                                                      for name in missing) + " Re-examine the query-string parameters.")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise _error(protocol, "incomplete", f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'")
    try:
        expires = int(query.get("X-Amz-Expires", "900"))
    except ValueError:
        raise _error(protocol, "incomplete", "X-Amz-Expires should be a number") from None
    if not 0 <= expires <= MAX_PRESIGNED_EXPIRES:
        raise _error(protocol, "incomplete",
                     f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}")
    return _Signed(scope=_scope_parse(query["X-Amz-Credential"], protocol),
                   signed_headers=[h for h in query["X-Amz-SignedHeaders"].lower().split(";") if h],
                   signature=query["X-Amz-Signature"], timestamp=query["X-Amz-Date"], expires=expires, presigned=True)


def _signed_parse(headers: dict[str, str], pairs: list[tuple[str, str]], protocol: str) -> _Signed:
    if headers.get("authorization"):
        return _parse_authorization(headers["authorization"], headers, protocol)
    query = dict(pairs)
    if "X-Amz-Algorithm" in query or "X-Amz-Signature" in query:
        return _parse_presigned(query, protocol)
    raise _error(protocol, "missing")


def request_credential_scope(*, headers: dict[str, str], query_string: str = "") -> CredentialScope | None:
    """The credential scope a request claims (for routing by service), without verifying anything; None if unsigned
    or malformed. request_authenticate re-parses and verifies it."""
    headers = _headers_lower(headers)
    try:
        return _signed_parse(headers, _query_pairs(query_string), "json").scope
    except AwsError:
        return None


def _time_check(signed: _Signed, now: dt.datetime, protocol: str) -> None:
    try:
        signed_at = dt.datetime.strptime(signed.timestamp, SIGV4_TIMESTAMP).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise _error(protocol, "time", f"Date must be in ISO-8601 'basic format'. Got '{signed.timestamp}'. "
                                       "See http://en.wikipedia.org/wiki/ISO_8601") from None
    if signed.scope.date != signed.timestamp[:8]:
        raise _error(protocol, "signature" if _FAMILY.get(protocol) == "ec2" else "time",
                     "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                     f"'{signed.scope.date}' != '{signed.timestamp[:8]}', from '{signed.timestamp}'.")

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime(SIGV4_TIMESTAMP)

    now = now.astimezone(dt.timezone.utc).replace(microsecond=0)
    if signed.presigned and now > signed_at + dt.timedelta(seconds=signed.expires):
        raise _error(protocol, "time", f"Signature expired: {signed.timestamp} is now earlier than "
                                       f"{stamp(now - dt.timedelta(seconds=signed.expires))} "
                                       f"({stamp(now)} - {signed.expires} sec.)")
    if not signed.presigned and signed_at < now - MAX_SKEW:
        raise _error(protocol, "time", f"Signature expired: {signed.timestamp} is now earlier than "
                                       f"{stamp(now - MAX_SKEW)} ({stamp(now)} - 15 min.)")
    if signed_at > now + MAX_SKEW:
        raise _error(protocol, "time", f"Signature not yet current: {signed.timestamp} is still later than "
                                       f"{stamp(now + MAX_SKEW)} ({stamp(now)} + 15 min.)")


class _Verifier(SigV4Auth):
    """botocore's signer, fed the headers the client said it signed — all of them and only those (botocore would
    otherwise drop a few it never signs itself, such as User-Agent)."""

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value
        return header_map


def request_authenticate(*, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes,
                         protocol: str, now: dt.datetime | None = None) -> AccessKey:
    """The active access key that signed this request; AwsError, in `protocol`'s words, when it is not signed well.

    Arguments, all as the request arrived on the wire:
    - `method`: "GET", "POST", ...
    - `path`: the full path still percent-encoded as sent, including the endpoint's own prefix (e.g.
      "/aws/2015-03-31/functions/arn%3Aaws%3Alambda%3A...%3Ahello/invocations"). SigV4 signs the encoded path, so a
      decoded one fails for any name with reserved characters: take it from `request_raw_path(request)`.
    - `query_string`: the raw query after "?", without it ("" when none); presigned requests carry their X-Amz-*
      parameters here.
    - `headers`: name -> value, any case (Django's `request.headers` will do); it must hold Host as the client sent
      it. Repeated headers joined with "," as Django and ASGI servers join them.
    - `body`: the raw body bytes (b"" when none).
    - `protocol`: the service's botocore protocol, "json", "rest-json", "query", "rest-xml" or "ec2" (any other,
      e.g. "smithy-rpc-v2-cbor", answers as json); it chooses the error codes (UnrecognizedClientException vs
      InvalidClientTokenId, InvalidSignatureException vs SignatureDoesNotMatch, AuthFailure for EC2).
    - `now`: for tests; the current time otherwise.

    Returns the AccessKey with `.account` (`.account_id`, `.user_arn`) and `.account.user` loaded, after noting
    its last use. The credential scope's region and service are not checked against anything (one endpoint serves
    every region and service): read them with `request_credential_scope` to route.

    Raises AwsError with AWS's code, message and status for: no signature (MissingAuthenticationToken...), a
    malformed Authorization header or credential scope (IncompleteSignature...), a time outside 15 minutes of now
    or an expired presigned URL ("Signature expired: ..." / "Signature not yet current: ..."), an unknown, revoked
    or session-token key (UnrecognizedClientException / InvalidClientTokenId), a signature that does not verify
    (InvalidSignatureException / SignatureDoesNotMatch), an x-amz-content-sha256 that is not the body's hash (the
    same signature error), and aws-chunked streaming payloads (NotImplemented, 501: not supported by Sandcloud).
    Nothing secret is logged: only the access key id and the error code.
    """
    now = now or timezone.now()
    headers = _headers_lower(headers)
    pairs = _query_pairs(query_string)
    access_key_id = ""
    try:
        signed = _signed_parse(headers, pairs, protocol)
        access_key_id = signed.scope.access_key_id
        if "host" not in signed.signed_headers and ":authority" not in signed.signed_headers:
            raise _error(protocol, "incomplete", "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                                                 "Authorization.")
        _time_check(signed, now, protocol)
        content_sha256 = headers.get("x-amz-content-sha256", "").strip()
        if content_sha256.startswith("STREAMING-"):
            raise AwsError("NotImplemented", f"Sandcloud does not support the streaming payload {content_sha256} "
                           "(aws-chunked): send the body in one piece.", status=501)
        key = identity.access_key_for_signing(access_key_id=access_key_id)
        token = headers.get("x-amz-security-token") or dict(pairs).get("X-Amz-Security-Token")
        # Long-term keys sign without a session token, temporary credentials only with theirs.
        if key is not None and key.session_token_hash:
            if not token or not identity.session_token_matches(access_key=key, token=token):
                key = None
            elif key.expires is not None and key.expires <= now:
                raise _error(protocol, "expired_token")
        elif token:
            key = None
        secret = identity.access_key_signing_secret(access_key=key) if key is not None else None
        if secret is None:
            raise _error(protocol, "unknown_key")
        if ("x-amz-content-sha256" in signed.signed_headers and content_sha256 != UNSIGNED_PAYLOAD
                and not _same(content_sha256.lower(), hashlib.sha256(body).hexdigest())):
            raise _error(protocol, "signature")
        if not _same(_signature(signed, method, path, headers, pairs, body, secret), signed.signature.lower()):
            raise _error(protocol, "signature")
    except AwsError as error:
        logger.info("SigV4 refused: %s (access key %s)", error.code, access_key_id or "none")
        raise
    identity.access_key_mark_used(access_key=key, service=signed.scope.service, region=signed.scope.region, now=now)
    return key


def _same(ours: str, theirs: str) -> bool:
    """Constant-time comparison that also takes a client's non-ASCII junk without raising."""
    return hmac.compare_digest(ours.encode(), theirs.encode("utf-8", "replace"))


def _signature(signed: _Signed, method: str, path: str, headers: dict[str, str], pairs: list[tuple[str, str]],
               body: bytes, secret: str) -> str:
    if signed.presigned:
        pairs = [(name, value) for name, value in pairs if name != "X-Amz-Signature"]
    request = AWSRequest(
        method=method.upper(),
        url=f"http://{headers.get('host', '')}{path or '/'}",
        headers={name: headers[name] for name in signed.signed_headers if name in headers},
        data=body,
        params=pairs,
    )
    request.context["timestamp"] = signed.timestamp
    signer = _Verifier(Credentials(signed.scope.access_key_id, secret), signed.scope.service, signed.scope.region)
    canonical_request = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical_request), request)


# Reserved characters a SigV4 client percent-encodes in a path; used only when the server kept no raw path.
_PATH_SAFE = "/-_.~"


def request_raw_path(request) -> str:
    """The request's path as it was sent, still percent-encoded: the ASGI scope's raw_path, a WSGI server's
    RAW_URI/REQUEST_URI, or else the decoded path re-encoded as botocore encodes it (exact for botocore's clients,
    which escape everything but unreserved characters; wrong only for an encoded "/" inside one path segment)."""
    scope = getattr(request, "scope", None) or {}
    raw = scope.get("raw_path")
    if raw:
        return (raw.decode("latin-1") if isinstance(raw, bytes) else raw).split("?", 1)[0]
    for name in ("RAW_URI", "REQUEST_URI"):
        if request.META.get(name):
            return request.META[name].split("?", 1)[0]
    return quote(request.path, safe=_PATH_SAFE)
