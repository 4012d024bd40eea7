"""The error tree; each error carries the HTTP status the API answers with.

    AlarmqError                 base (500)
    ├── ConfigError             a setting is missing or malformed; the process stops at start
    ├── RedisUnavailable        Redis did not answer (503)
    ├── BadRequest              the body is not JSON or not an object (400)
    │   └── Invalid             a field has the wrong value or type (422)
    ├── Unauthorized            no token, or an unknown one (401)
    ├── Forbidden               the token's role may not do this (403)
    ├── NotFound                no such job, task or route (404)
    ├── Conflict                the thing exists or is in the wrong state (409)
    ├── TooLarge                the body is over the cap (413)
    └── UnsupportedMediaType    the body is not application/json (415)

Messages are lowercase and say what to change; the API translates them to
`{"error": message}` and the CLI to one line on stderr.
"""

from __future__ import annotations


class AlarmqError(Exception):
    """Base class for every error alarmq raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AlarmqError):
    """A setting is missing or has a value the process cannot use."""


class RedisUnavailable(AlarmqError):
    """Redis did not answer."""

    status = 503


class BadRequest(AlarmqError):
    """The request cannot be read at all."""

    status = 400


class Invalid(BadRequest):
    """A field has a value that is not accepted."""

    status = 422


class Unauthorized(AlarmqError):
    """The caller did not prove who it is."""

    status = 401


class Forbidden(AlarmqError):
    """The caller may not do this."""

    status = 403


class NotFound(AlarmqError):
    """The thing asked for does not exist."""

    status = 404


class Conflict(AlarmqError):
    """The thing is in a state that does not allow this."""

    status = 409


class TooLarge(AlarmqError):
    """The request body is over the cap."""

    status = 413


class UnsupportedMediaType(AlarmqError):
    """The request body is not JSON."""

    status = 415
