"""Serve notification channels: /api/v1/channels and a test send to one."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, url_for

from alarmq import channels
from alarmq.web import inputs, redis_of, settings_of

bp = Blueprint("channels", __name__, url_prefix="/api/v1")


@bp.get("/channels")
def list_channels() -> Response:
    """List every channel, secrets hidden."""
    return jsonify(channels=[channels.describe(c) for c in channels.list_all(redis_of(current_app))])


@bp.post("/channels")
def create_channel() -> tuple[Response, int, dict[str, str]]:
    """Create a webhook or email channel."""
    created = channels.create(redis_of(current_app), inputs.json_body())
    url = url_for("channels.get_channel", channel_id=created["id"])
    return jsonify(channels.describe(created)), 201, {"Location": url}


@bp.get("/channels/<channel_id>")
def get_channel(channel_id: str) -> Response:
    """Show one channel, secrets hidden."""
    return jsonify(channels.describe(channels.load(redis_of(current_app), channel_id)))


@bp.patch("/channels/<channel_id>")
def patch_channel(channel_id: str) -> Response:
    """Change some fields; `config` is merged key by key and "***" keeps a stored secret."""
    changed = channels.patch(redis_of(current_app), channel_id, inputs.json_body())
    return jsonify(channels.describe(changed))


@bp.delete("/channels/<channel_id>")
def delete_channel(channel_id: str) -> tuple[str, int]:
    """Delete a channel."""
    channels.delete(redis_of(current_app), channel_id)
    return "", 204


@bp.post("/channels/<channel_id>/test")
def test_channel(channel_id: str) -> tuple[Response, int]:
    """Queue a test message to the channel; the job shows whether it arrived."""
    job = channels.send_test(redis_of(current_app), settings_of(current_app), channel_id)
    return jsonify(
        id=job.id, status=job.get_status(refresh=False).value, url=url_for("api.get_job", job_id=job.id)
    ), 202
