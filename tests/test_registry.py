"""The task registry: schemas from type hints, argument validation, registration rules."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from alarmq import registry
from alarmq.errors import ConfigError, Invalid
from alarmq.registry import schema_of, task


def sample(name: str, count: int, ratio: float = 0.5, flag: bool = False, tags: list[str] | None = None,
           mode: Literal["a", "b"] = "a", extra: dict[str, Any] | None = None) -> None:  # fmt: skip
    """Do nothing, with many kinds of parameter."""


def test_schema_follows_the_type_hints() -> None:
    schema = schema_of(sample)
    assert schema["required"] == ["name", "count"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["name"] == {"type": "string"}
    assert props["count"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number", "default": 0.5}
    assert props["flag"] == {"type": "boolean", "default": False}
    assert props["tags"] == {"type": ["array", "null"], "items": {"type": "string"}, "default": None}
    assert props["mode"] == {"enum": ["a", "b"], "default": "a"}
    assert props["extra"] == {"type": ["object", "null"], "default": None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x"}, "needs argument 'count'"),
        ({"name": "x", "count": 1.5}, "kwargs.count must be integer, got float 1.5"),
        ({"name": "x", "count": True}, "kwargs.count must be integer, got bool True"),
        ({"name": "x", "count": 1, "ratio": "1"}, "kwargs.ratio must be number"),
        ({"name": "x", "count": 1, "ratio": float("nan")}, "kwargs.ratio must be number"),
        ({"name": "x", "count": 1, "tags": ["a", 2]}, "kwargs.tags[1] must be string"),
        ({"name": "x", "count": 1, "mode": "c"}, "kwargs.mode must be one of ['a', 'b']"),
        ({"name": "x", "count": 1, "nope": 1}, "has no argument 'nope'"),
    ],
)
def test_validation_names_the_bad_field(kwargs: dict[str, Any], message: str) -> None:
    t = registry.Task(name="sample", func=sample, description="", schema=schema_of(sample))
    with pytest.raises(Invalid) as excinfo:
        t.validate(kwargs)
    assert message in excinfo.value.message


def test_valid_arguments_pass_unchanged() -> None:
    t = registry.Task(name="sample", func=sample, description="", schema=schema_of(sample))
    kwargs = {"name": "x", "count": 2, "ratio": 1, "tags": None, "extra": {"k": [1]}}
    assert t.validate(kwargs) == kwargs


def test_builtins_are_registered_with_a_description() -> None:
    registry.load()
    echo = registry.get("echo")
    assert echo.description == "Return the message unchanged."
    assert echo.path == "alarmq.tasks.echo"
    assert registry.get("http_check").timeout == 120


def test_unknown_task_lists_the_known_ones() -> None:
    registry.load()
    with pytest.raises(Invalid) as excinfo:
        registry.get("os.system")
    assert "unknown task 'os.system'; registered tasks:" in excinfo.value.message
    assert "echo" in excinfo.value.message


def test_task_decorator_refuses_what_a_worker_could_not_run() -> None:
    def local(x: int) -> int:
        return x

    with pytest.raises(ConfigError, match="module-level function"):
        task(local)
    with pytest.raises(ConfigError, match="must be letters"):
        task(name="1bad")(sample)
    with pytest.raises(ConfigError, match="queue 'a b'"):
        task(queue="a b")(sample)
    with pytest.raises(ConfigError, match="JSON cannot carry"):
        schema_of(_takes_bytes)
    with pytest.raises(ConfigError, match="used twice"):
        task(name="echo")(sample)


def _takes_bytes(data: bytes) -> None:
    """Take bytes, which JSON cannot carry."""


def test_loading_a_missing_module_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ALARMQ_TASK_MODULES: cannot import 'no_such_module_xyz'"):
        registry.load(["no_such_module_xyz"])
