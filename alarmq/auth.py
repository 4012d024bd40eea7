"""Check API tokens and load or create the admin token.

Tokens are compared in constant time and never logged. Named tokens with
roles come with the dashboard; for now there is one admin token.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from alarmq.errors import ConfigError, Unauthorized
from alarmq.settings import Settings


@dataclass(frozen=True)
class Principal:
    """Who made a request and what they may do."""

    name: str
    role: str


def check_token(expected: str | None, presented: str | None) -> Principal:
    """Return the principal for `presented`, or raise Unauthorized."""
    if not presented:
        raise Unauthorized("send the API token as 'Authorization: Bearer <token>'")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise Unauthorized("the API token is not valid")
    return Principal(name="admin", role="admin")


def bearer(header: str | None) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header value, if any."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def load_token(settings: Settings) -> str | None:
    """Return the admin token from the settings or the data dir, if there is one."""
    if settings.api_token:
        return settings.api_token
    try:
        return settings.token_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_token(settings: Settings) -> tuple[str, bool]:
    """Return the admin token, generating and keeping one in the data dir if needed; True if new."""
    existing = load_token(settings)
    if existing:
        return existing, False
    token = secrets.token_urlsafe(32)
    path: Path = settings.token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `alarmq up` won the race; use its token
        return load_token(settings) or _fail(path), False
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def _fail(path: Path) -> str:
    raise ConfigError(f"{path} is empty; delete it or set ALARMQ_API_TOKEN")
