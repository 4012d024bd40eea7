"""Who may do what: the bootstrap admin token, named tokens with roles, login sessions.

Roles rank `viewer < operator < admin`: a viewer sees everything and changes
nothing, an operator steers schedules, alarms and jobs, an admin also manages
tokens. The bootstrap token (`ALARMQ_API_TOKEN`, or the one `alarmq up`
generates) is always the principal `admin` with the role `admin`.

Named tokens are `alq_` + 256 random bits, shown once when created and stored
only as sha256(salt + token) with a random salt per token. A fast hash is
enough here: slow password hashes (bcrypt, scrypt) exist to make guessing
low-entropy passwords expensive, and no amount of guessing finds a 256-bit
random value, while a slow hash would cost milliseconds on every request.
The salt keeps two stored hashes unlinkable and precomputed tables useless.
Every comparison is constant-time, and no token is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from alarmq import keys
from alarmq.connection import Redis
from alarmq.errors import ConfigError, Conflict, Forbidden, Invalid, NotFound, Unauthorized
from alarmq.settings import Settings

ROLES = ("viewer", "operator", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
BOOTSTRAP = "admin"
"""The principal name of the bootstrap token; no named token may take it."""
TOKEN_PREFIX = "alq_"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_TOKEN_LENGTH = 200
LAST_USED_EVERY = 60.0
"""Seconds between two writes of a token's last use, so a busy token costs no write per request."""
SESSION_TTL = 12 * 3600
"""Seconds a login session lasts."""

# Record a use only while the token still exists, so a use racing a revoke leaves nothing behind.
_TOUCH_LUA = """
    if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
"""


@dataclass(frozen=True)
class Principal:
    """Who made a request and what they may do."""

    name: str
    role: str
    token_id: str = field(default="", compare=False, repr=False)
    """Which token (by its random id, not its secret) authenticated; a session dies with it."""

    def may(self, role: str) -> bool:
        """Return True if this principal has `role` or a higher one."""
        return RANK.get(self.role, -1) >= RANK[role]

    def require(self, role: str) -> None:
        """Raise Forbidden unless this principal has `role` or a higher one."""
        if not self.may(role):
            raise Forbidden(f"{self.name!r} has the {self.role} role; this needs {role} or higher")


def validate_role(role: object) -> str:
    """Return `role` if it is one of ROLES, or raise Invalid."""
    if not isinstance(role, str) or role not in RANK:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def validate_name(name: object) -> str:
    """Return a token name, or raise Invalid saying what names look like."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid(
            f"a token name is 1-64 of a-z, 0-9, '_', '.' and '-', starting with a letter or digit, got {name!r}"
        )
    if name == BOOTSTRAP:
        raise Invalid(f"{BOOTSTRAP!r} names the bootstrap token (ALARMQ_API_TOKEN); pick another name")
    return name


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(salt.encode() + token.encode()).hexdigest()


def _bootstrap_id(token: str) -> str:
    # A session opened with the bootstrap token ends when that token changes.
    return "bootstrap:" + hmac.new(token.encode(), b"alarmq session", hashlib.sha256).hexdigest()[:16]


# -- named tokens --------------------------------------------------------------------


def add_token(conn: Redis, name: str, role: str, now: float | None = None) -> str:
    """Create a named token with `role` and return its secret; only its salted hash is stored."""
    name = validate_name(name)
    role = validate_role(role)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    record = {
        "role": role,
        "hash": _digest(salt, secret),
        "salt": salt,
        "id": secrets.token_hex(8),
        "created_at": time.time() if now is None else now,
    }
    if not conn.hsetnx(keys.tokens(), name, json.dumps(record)):
        raise Conflict(f"a token named {name!r} exists; revoke it first")
    conn.hdel(keys.tokens_last_used(), name)
    return secret


def _public(name: str, record: dict[str, Any], last_used: bytes | None) -> dict[str, Any]:
    return {
        "name": name,
        "role": record["role"],
        "created_at": record["created_at"],
        "last_used": float(last_used) if last_used else None,
    }


def list_tokens(conn: Redis) -> list[dict[str, Any]]:
    """Return every named token as {name, role, created_at, last_used}, sorted by name; never a hash."""
    with conn.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.tokens())
        pipe.hgetall(keys.tokens_last_used())
        records, used = cast(tuple[dict[bytes, bytes], dict[bytes, bytes]], pipe.execute())
    return [_public(name.decode(), json.loads(raw), used.get(name)) for name, raw in sorted(records.items())]


def describe_token(conn: Redis, name: str) -> dict[str, Any] | None:
    """Return one named token as list_tokens shows it, or None."""
    raw = cast(bytes | None, conn.hget(keys.tokens(), name))
    if raw is None:
        return None
    return _public(name, json.loads(raw), cast(bytes | None, conn.hget(keys.tokens_last_used(), name)))


def revoke_token(conn: Redis, name: str) -> None:
    """Delete a named token; requests and sessions using it are refused from now on."""
    with conn.pipeline(transaction=True) as pipe:
        pipe.hdel(keys.tokens(), name)
        pipe.hdel(keys.tokens_last_used(), name)
        removed, _ = pipe.execute()
    if not removed:
        raise NotFound(f"no token named {name!r}; `alarmq tokens list` shows them")


# -- authentication --------------------------------------------------------------------


def authenticate(conn: Redis, settings_token: str | None, presented: str | None) -> Principal:
    """Return the principal a presented token stands for, or raise Unauthorized."""
    if not presented:
        raise Unauthorized("send the API token as 'Authorization: Bearer <token>'")
    if settings_token and hmac.compare_digest(settings_token.encode(), presented.encode()):
        return Principal(BOOTSTRAP, "admin", _bootstrap_id(settings_token))
    if presented.startswith(TOKEN_PREFIX) and len(presented) <= MAX_TOKEN_LENGTH:
        found = _named(conn, presented)
        if found is not None:
            return found
    raise Unauthorized("the API token is not valid")


def _named(conn: Redis, presented: str) -> Principal | None:
    with conn.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.tokens())
        pipe.hgetall(keys.tokens_last_used())
        records, used = cast(tuple[dict[bytes, bytes], dict[bytes, bytes]], pipe.execute())
    match: tuple[str, dict[str, Any]] | None = None
    # Every record is checked (no early exit), so timing does not tell which name came close.
    for raw_name, raw in records.items():
        record = json.loads(raw)
        if hmac.compare_digest(_digest(record["salt"], presented), record["hash"]):
            match = (raw_name.decode(), record)
    if match is None:
        return None
    name, record = match
    now = time.time()
    last = used.get(name.encode())
    if last is None or now - float(last) >= LAST_USED_EVERY:
        conn.eval(_TOUCH_LUA, 2, keys.tokens(), keys.tokens_last_used(), name, repr(now))
    return Principal(name, record["role"], record["id"])


# -- login sessions ------------------------------------------------------------------


def open_session(conn: Redis, principal: Principal, ttl: int = SESSION_TTL) -> tuple[str, str]:
    """Start a login session for `principal`; return its id and its CSRF token."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.set(keys.session(session_id), json.dumps({"name": principal.name, "token_id": principal.token_id}), ex=ttl)
    return session_id, csrf


def resume_session(conn: Redis, settings_token: str | None, session_id: str) -> Principal:
    """Return the principal of a live session, or raise Unauthorized (expired, logged out, token revoked)."""
    raw = cast(bytes | None, conn.get(keys.session(session_id)))
    if raw is None:
        raise Unauthorized("the session has ended; log in again")
    data = json.loads(raw)
    name, token_id = data["name"], data["token_id"]
    if name == BOOTSTRAP:
        if settings_token and hmac.compare_digest(token_id, _bootstrap_id(settings_token)):
            return Principal(BOOTSTRAP, "admin", token_id)
    else:
        raw_record = cast(bytes | None, conn.hget(keys.tokens(), name))
        record = json.loads(raw_record) if raw_record is not None else None
        if record is not None and hmac.compare_digest(record["id"], token_id):
            return Principal(name, record["role"], token_id)
    conn.delete(keys.session(session_id))
    raise Unauthorized("the token this session logged in with was revoked; log in again")


def close_session(conn: Redis, session_id: str) -> None:
    """End a login session (log out)."""
    conn.delete(keys.session(session_id))


# -- the bootstrap token and the session key -----------------------------------------------


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


def ensure_secret_key(settings: Settings) -> str:
    """Return the key that signs session cookies: ALARMQ_SECRET_KEY, else one generated once into the data dir.

    Never a per-process random key: every web process (and every restart) must
    accept the cookies the others signed.
    """
    if settings.secret_key:
        return settings.secret_key
    path = settings.secret_key_file
    existing = _read_key(path)
    if existing:
        return existing
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent} ({exc.strerror}); set ALARMQ_SECRET_KEY") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process is writing it; wait for its key
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            existing = _read_key(path)
            if existing:
                return existing
            time.sleep(0.01)
        raise ConfigError(f"{path} is empty; delete it or set ALARMQ_SECRET_KEY") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path} ({exc.strerror}); set ALARMQ_SECRET_KEY") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror}); set ALARMQ_SECRET_KEY") from None
