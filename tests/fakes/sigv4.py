"""Check AWS Signature Version 4 the way a service does, written from AWS's published algorithm.

The fakes use this instead of botocore's signer, so a signing bug in the client cannot be hidden by
the same bug in the check. Two flavours, as AWS has them:

- ``execute-api`` (API Gateway): the payload hash is computed from the body;
- ``s3``: the payload hash is the ``x-amz-content-sha256`` header (or ``UNSIGNED-PAYLOAD`` for a
  presigned URL), checked against the body when it is a hex digest. Presigned URLs carry the
  signature in the query (``X-Amz-Signature``) and expire after ``X-Amz-Expires`` seconds.

Answers are ``Verdict`` values: ``ok`` or the error code and message the service would send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

ALGORITHM = "AWS4-HMAC-SHA256"
# API Gateway and S3 refuse a request signed more than 15 minutes away from their clock.
MAX_SKEW = timedelta(minutes=15)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]+)"
)


@dataclass(frozen=True)
class Secret:
    """What the service knows about one access key."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    access_key_id: str | None = None
    code: str = ""
    message: str = ""
    presigned: bool = False


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def canonical_query(raw_query: str, drop: tuple[str, ...] = ()) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        key, value = urllib.parse.unquote_plus(key), urllib.parse.unquote_plus(value)
        if key in drop:
            continue
        pairs.append((_quote(key), _quote(value)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers: Mapping[str, str], signed: list[str]) -> str:
    lowered: dict[str, list[str]] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), []).append(" ".join(str(value).split()))
    return "".join(f"{name}:{','.join(lowered.get(name, []))}\n" for name in signed)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(secret: str, amz_date: str, scope: str, canonical_request: str) -> str:
    date, region, service, _ = scope.split("/")
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    return hmac.new(signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    secrets: Mapping[str, Secret],
    now: datetime | None = None,
) -> Verdict:
    """Is this request signed by one of ``secrets`` for ``service`` in ``region``?"""
    now = now or datetime.now(timezone.utc)
    path, _, query = raw_path.partition("?")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    lowered = {k.lower(): v for k, v in headers.items()}
    presigned = "X-Amz-Signature" in params
    if presigned:
        credential, signed_text = params.get("X-Amz-Credential", ""), params.get("X-Amz-SignedHeaders", "")
        signature, amz_date = params["X-Amz-Signature"], params.get("X-Amz-Date", "")
        token = params.get("X-Amz-Security-Token")
        payload_hash = "UNSIGNED-PAYLOAD"
        cquery = canonical_query(query, drop=("X-Amz-Signature",))
    else:
        found = _AUTH.match(lowered.get("authorization", "").strip())
        if not found:
            return Verdict(False, code="MissingAuthenticationToken", message="Missing Authentication Token")
        credential, signed_text, signature = found["credential"], found["signed"], found["signature"]
        amz_date = lowered.get("x-amz-date", "")
        token = lowered.get("x-amz-security-token")
        cquery = canonical_query(query)
        if service == "s3":
            payload_hash = lowered.get("x-amz-content-sha256", "")
            if not payload_hash:
                return Verdict(False, code="InvalidRequest", message="Missing required header for this request: x-amz-content-sha256")
            if re.fullmatch(r"[0-9a-f]{64}", payload_hash) and hashlib.sha256(body).hexdigest() != payload_hash:
                return Verdict(False, code="XAmzContentSHA256Mismatch",
                               message="The provided 'x-amz-content-sha256' header does not match what was computed.")
        else:
            payload_hash = hashlib.sha256(body).hexdigest()
    access_key, _, scope = credential.partition("/")
    scope_parts = scope.split("/")
    if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
        return Verdict(False, access_key, "IncompleteSignature", "Credential should be scoped to a valid region.")
    if scope_parts[2] != service or scope_parts[1] != region:
        return Verdict(False, access_key, "InvalidSignatureException",
                       f"Credential should be scoped to correct service: '{service}' in region '{region}'.")
    secret = secrets.get(access_key)
    if secret is None:
        if service == "s3":
            return Verdict(False, access_key, "InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist in our records.")
        return Verdict(False, access_key, "UnrecognizedClientException", "The security token included in the request is invalid.")
    if secret.session_token is not None and token != secret.session_token:
        return Verdict(False, access_key, "InvalidToken", "The security token included in the request is invalid.")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return Verdict(False, access_key, "IncompleteSignature", "X-Amz-Date is missing or malformed.")
    if presigned:
        expires = int(params.get("X-Amz-Expires", "0") or 0)
        if now > signed_at + timedelta(seconds=expires):
            return Verdict(False, access_key, "AccessDenied", "Request has expired", presigned=True)
    elif abs(now - signed_at) > MAX_SKEW:
        return Verdict(False, access_key, "InvalidSignatureException", "Signature expired: " + amz_date)
    signed = signed_text.split(";")
    if "host" not in signed:
        return Verdict(False, access_key, "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    canonical_request = "\n".join(
        [method, path or "/", cquery, _canonical_headers(headers, signed), signed_text, payload_hash]
    )
    expected = _signature(secret.secret_access_key, amz_date, scope, canonical_request)
    if not hmac.compare_digest(expected, signature):
        code = "SignatureDoesNotMatch" if service == "s3" else "InvalidSignatureException"
        return Verdict(False, access_key, code,
                       "The request signature we calculated does not match the signature you provided. "
                       "Check your key and signing method.", presigned=presigned)
    return Verdict(True, access_key, presigned=presigned)
