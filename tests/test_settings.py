"""Settings: defaults, every variable, and one clear line for each bad value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alarmq.errors import ConfigError
from alarmq.settings import Settings


def test_defaults_need_no_environment() -> None:
    s = Settings.from_env({})
    assert s.redis_url is None
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.api_token is None
    assert s.data_dir == Path(".alarmq")
    assert s.effective_worker_class == "simple"
    assert s.effective_web_server == "gunicorn"
    assert s.task_modules == ()


def test_every_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://example:6380/2",
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "ALARMQ_API_TOKEN": "x" * 20,
            "ALARMQ_DATA_DIR": "/var/lib/alarmq",
            "ALARMQ_WORKER_CLASS": "FORK",
            "ALARMQ_WORKER_CONCURRENCY": "3",
            "ALARMQ_WORKER_MAX_JOBS": "50",
            "ALARMQ_WORKER_MAX_MEMORY_MB": "100",
            "ALARMQ_TASK_MODULES": "myapp.tasks, myapp.checks",
            "ALARMQ_JOB_TIMEOUT": "30",
            "ALARMQ_RESULT_TTL": "60",
            "ALARMQ_FAILURE_TTL": "120",
            "ALARMQ_WEB_SERVER": "waitress",
            "ALARMQ_WEB_THREADS": "8",
            "ALARMQ_WS_QUEUE": "64",
            "ALARMQ_WS_PORT": "9001",
            "ALARMQ_EMBEDDED_REDIS": "no",
            "ALARMQ_REDIS_SERVER": "/usr/bin/redis-server",
            "ALARMQ_REDIS_POOL_SIZE": "10",
            "ALARMQ_MAX_BODY_BYTES": "2048",
        }
    )
    assert s.redis_url == "redis://example:6380/2"
    assert (s.host, s.port, s.api_token) == ("0.0.0.0", 9000, "x" * 20)
    assert s.data_dir == Path("/var/lib/alarmq")
    assert (s.worker_class, s.worker_concurrency, s.worker_max_jobs, s.worker_max_memory_mb) == ("fork", 3, 50, 100)
    assert s.task_modules == ("myapp.tasks", "myapp.checks")
    assert (s.job_timeout, s.result_ttl, s.failure_ttl) == (30, 60, 120)
    assert (s.effective_web_server, s.web_threads, s.ws_queue, s.effective_ws_port) == ("waitress", 8, 64, 9001)
    assert s.embedded_redis is False
    assert (s.redis_server, s.redis_pool_size, s.max_body_bytes) == ("/usr/bin/redis-server", 10, 2048)


def test_windows_mode_forces_waitress_and_the_simple_worker() -> None:
    s = Settings.from_env({"ALARMQ_WINDOWS_MODE": "1", "ALARMQ_WORKER_CLASS": "fork"})
    assert s.effective_web_server == "waitress"
    assert s.effective_worker_class == "simple"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT='eighty' is not valid; it accepts a whole number from 1 to 65535"),
        ({"PORT": "70000"}, "PORT='70000' is not valid"),
        (
            {"ALARMQ_WORKER_CLASS": "thread"},
            "ALARMQ_WORKER_CLASS='thread' is not valid; it accepts auto or fork or simple",
        ),
        ({"ALARMQ_WEB_SERVER": "uwsgi"}, "ALARMQ_WEB_SERVER='uwsgi' is not valid"),
        ({"ALARMQ_EMBEDDED_REDIS": "maybe"}, "ALARMQ_EMBEDDED_REDIS='maybe' is not valid; it accepts 1/true/yes/on"),
        ({"ALARMQ_TASK_MODULES": "my-app.tasks"}, "ALARMQ_TASK_MODULES='my-app.tasks' is not valid"),
        ({"ALARMQ_JOB_TIMEOUT": "0"}, "ALARMQ_JOB_TIMEOUT='0' is not valid"),
        ({"ALARMQ_API_TOKEN": "short"}, "ALARMQ_API_TOKEN must be at least 16 characters"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://, rediss:// or unix://"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_accepts(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(env)
    assert message in excinfo.value.message
    assert "\n" not in excinfo.value.message


def test_settings_are_frozen_and_hide_the_token() -> None:
    s = Settings.from_env({"ALARMQ_API_TOKEN": "secret-token-value-123"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    assert "secret-token-value-123" not in repr(s)


def test_every_field_documents_its_variable() -> None:
    source = Path(__file__).resolve().parent.parent.joinpath("alarmq/settings.py").read_text()
    for field in dataclasses.fields(Settings):
        block = source.split(f"    {field.name}: ", 1)[1].split('"""', 2)[1]
        variable = block.split(":", 1)[0]
        assert variable.isupper() and " " not in variable, f"{field.name} does not name its variable"
