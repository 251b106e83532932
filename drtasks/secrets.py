"""Secrets never reach any output: log records (invoke's --debug included), error lines, `inv config`.

Two layers. Loggers that print request headers and bodies at DEBUG (botocore, boto3, s3transfer,
urllib3) are held at INFO, so `--debug` cannot make them print an Authorization header, a session
token or a Cognito answer. And every log record and every error line goes through ``redact``:
values of secret-named fields (password, secret key, token), Authorization and security-token
headers, and any value drtasks knows to be a secret (the DRoA password, temporary credentials, the
S3 secret keys in use) become ``****``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Iterable

REDACTED = "****"
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|ACCESS_KEY", re.IGNORECASE)
# A known secret shorter than this is redacted only where it is a whole value (`inv config`):
# replacing it inside text would mangle ordinary words.
MIN_INLINE_LENGTH = 6
QUIET_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")

_known: set[str] = set()

# 'Authorization': b'AWS4-HMAC-SHA256 ...'  /  "SecretKey": "..."  /  PASSWORD='...'
_QUOTED_FIELD = re.compile(
    r"""(?ix)
    ( ['"]? (?: authorization | cookie | set-cookie | [\w-]*(?:secret|token|password|passwd|private[_-]?key|credentials?)[\w-]* ) ['"]?
      \s* [:=] \s* b? )
    ( '(?:[^'\\]|\\.)*' | "(?:[^"\\]|\\.)*" )
    """
)
# Authorization: AWS4-HMAC-SHA256 ... (a header line, unquoted)
_HEADER_LINE = re.compile(r"(?im)^(\s*(?:authorization|x-amz-security-token|cookie)\s*:\s*)(\S.*)$")
# ...&X-Amz-Security-Token=...&X-Amz-Signature=... (presigned URLs)
_QUERY = re.compile(r"(?i)\b(X-Amz-(?:Security-Token|Signature|Credential)=)([^&\s'\"]+)")
# http://user:password@host
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]+:)([^@\s/'\"]+)(@)")


def remember(*values: Any) -> None:
    """Add values that must never be shown (empty and non-text values are ignored)."""
    for value in values:
        if isinstance(value, str) and value.strip():
            _known.add(value)


def known() -> frozenset[str]:
    return frozenset(_known)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _quoted_value(match: re.Match[str]) -> str:
    quote = match.group(2)[0]
    return f"{match.group(1)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """``text`` with every secret it shows replaced by ****."""
    if not text:
        return text
    for value in sorted((v for v in _known if len(v) >= MIN_INLINE_LENGTH), key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    text = _QUOTED_FIELD.sub(_quoted_value, text)
    text = _HEADER_LINE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    return _URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)


def redact_value(name: str, value: str, secrets: Iterable[str] = ()) -> str:
    """A setting as `inv config` shows it: secret-named, equal to a known secret, or holding one."""
    if not value:
        return value
    every = _known.union(secrets)
    if is_secret_name(name) or value in every:
        return REDACTED
    return redact(value) if any(len(s) >= MIN_INLINE_LENGTH and s in value for s in every) or "@" in value else value


# ---------------------------------------------------------------- logging


_installed = False


def install_log_redaction() -> None:
    """Redact every log record from now on; hold the header-printing loggers at INFO. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    remember(*(value for name, value in os.environ.items() if is_secret_name(name)))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record still must not leak its arguments
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting_record)
