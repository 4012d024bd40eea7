"""Register tasks with `@task`, derive their parameter schemas and validate arguments.

Only registered tasks can be enqueued from outside: the API and the CLI look a
task up here by its public name and never import a dotted path they were given.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from alarmq import keys
from alarmq.errors import ConfigError, Invalid, NotFound

F = TypeVar("F", bound=Callable[..., Any])

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
QUEUE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BUILTIN_MODULES = ("alarmq.tasks", "alarmq.engine")

_TASKS: dict[str, Task] = {}
_DECLARED: dict[str, dict[str, Any]] = {}
_CHECKS: dict[str, Task] = {}


@dataclass(frozen=True)
class Task:
    """A function that may be enqueued by its public name."""

    name: str
    func: Callable[..., Any]
    description: str
    schema: dict[str, Any]
    queue: str = "default"
    timeout: int | None = None
    retries: int = 0
    retry_intervals: tuple[int, ...] = field(default=())
    quiet: bool = False

    @property
    def path(self) -> str:
        """Return the import path RQ stores for this task's function."""
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def describe(self) -> dict[str, Any]:
        """Return the task as the API shows it."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.schema,
            "queue": self.queue,
            "timeout": self.timeout,
            "retries": self.retries,
            "retry_intervals": list(self.retry_intervals),
        }

    def validate(self, kwargs: object) -> dict[str, Any]:
        """Return `kwargs` checked against the schema, with defaults left to the function."""
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise Invalid("kwargs must be an object of argument names to values")
        props: dict[str, Any] = self.schema["properties"]
        unknown = sorted(set(kwargs) - set(props))
        if unknown:
            raise Invalid(f"task {self.name!r} has no argument {unknown[0]!r}; it takes: {', '.join(props) or 'none'}")
        for name in self.schema["required"]:
            if name not in kwargs:
                raise Invalid(f"task {self.name!r} needs argument {name!r}")
        clean = dict(kwargs)
        for name, value in kwargs.items():
            _check_value(f"kwargs.{name}", value, props[name])
            if _is_integral_float(value) and "integer" in _types(props[name]):
                clean[name] = int(value)  # JSON has one number type: 3.0 is the integer 3
        return clean


@overload
def task(func: F, /) -> F: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    queue: str = "default",
    timeout: int | None = None,
    retries: int = 0,
    retry_intervals: Iterable[int] = (),
    every: int | str | None = None,
    quiet: bool = False,
) -> Callable[[F], F]: ...


def task(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    queue: str = "default",
    timeout: int | None = None,
    retries: int = 0,
    retry_intervals: Iterable[int] = (),
    every: int | str | None = None,
    quiet: bool = False,
) -> F | Callable[[F], F]:
    """Register a function as a task that the API, CLI and schedules can enqueue.

    `every="30s"` also declares a schedule with the task's name that runs it
    with its defaults; `schedule(...)` declares richer ones. `quiet=True`
    keeps its runs out of the event stream (for alarmq's own plumbing).
    """

    def register(fn: F) -> F:
        public = name or fn.__name__
        if not NAME_RE.fullmatch(public):
            raise ConfigError(f"task name {public!r} must be letters, digits, '_', '.' or '-' and start with a letter")
        if not QUEUE_RE.fullmatch(queue):
            raise ConfigError(f"task {public!r}: queue {queue!r} must be letters, digits, '_' or '-'")
        if "<locals>" in fn.__qualname__:
            raise ConfigError(f"task {public!r} must be a module-level function so workers can import it")
        existing = _TASKS.get(public)
        if existing is not None and existing.path != f"{fn.__module__}.{fn.__qualname__}":
            raise ConfigError(
                f"task name {public!r} is used twice: {existing.path} and {fn.__module__}.{fn.__qualname__}"
            )
        doc = inspect.getdoc(fn) or ""
        _TASKS[public] = Task(
            name=public,
            func=fn,
            description=description or (doc.splitlines()[0] if doc else ""),
            schema=schema_of(fn),
            queue=queue,
            timeout=timeout,
            retries=retries,
            retry_intervals=tuple(retry_intervals),
            quiet=quiet,
        )
        if every is not None:
            schedule(public, task=public, interval=every)
        return fn

    if func is not None:
        return register(func)
    return register


def _tasks() -> dict[str, Task]:
    if any(m not in sys.modules for m in BUILTIN_MODULES):
        load()  # importing them registers the built-in tasks
    return _TASKS


def check(func: F | None = None, /, *, name: str | None = None, description: str | None = None) -> Any:
    """Register a function as a check that `task` alarms can run.

    It returns True/False, or `(ok, value, message)`, or a dict with those keys.
    """

    def register(fn: F) -> F:
        public = name or fn.__name__
        if not NAME_RE.fullmatch(public):
            raise ConfigError(f"check name {public!r} must be letters, digits, '_', '.' or '-' and start with a letter")
        doc = inspect.getdoc(fn) or ""
        _CHECKS[public] = Task(name=public, func=fn, description=description or (doc.splitlines()[0] if doc else ""),
                               schema=schema_of(fn), queue=keys.SCHEDULED_QUEUE)  # fmt: skip
        return fn

    return register(func) if func is not None else register


def get_check(name: object) -> Task:
    """Return the check registered under `name`, or raise an error that lists the known ones."""
    _tasks()
    if not isinstance(name, str) or name not in _CHECKS:
        known = ", ".join(sorted(_CHECKS)) or "none"
        raise Invalid(f"config.check {name!r} is not a registered @check; registered checks: {known}")
    return _CHECKS[name]


def all_checks() -> list[Task]:
    """Return every registered check, sorted by name."""
    _tasks()
    return [_CHECKS[n] for n in sorted(_CHECKS)]


def schedule(schedule_id: str, *, task: str, **fields: Any) -> None:
    """Declare a schedule in code; the scheduler creates or updates it at every start.

    Fields are those of POST /api/v1/schedules (kwargs, interval or cron,
    timezone, queue, timeout, misfire, overlap, description, enabled);
    `interval` may also be a duration like "30s" or "5m".
    """
    _DECLARED[schedule_id] = {"task": task, **fields}


def declared_schedules() -> dict[str, dict[str, Any]]:
    """Return every schedule declared in code, by id."""
    _tasks()
    return dict(_DECLARED)


def get(name: object) -> Task:
    """Return the task registered under `name`, or raise an error that lists the known ones."""
    _tasks()
    if not isinstance(name, str) or name not in _TASKS:
        known = ", ".join(sorted(_TASKS)) or "none"
        raise Invalid(f"unknown task {name!r}; registered tasks: {known}")
    return _TASKS[name]


def find(name: str) -> Task:
    """Return the task registered under `name`, or raise NotFound."""
    if name not in _tasks():
        raise NotFound(f"no task named {name!r}; GET /api/v1/tasks lists them")
    return _TASKS[name]


def all_tasks() -> list[Task]:
    """Return every registered task, sorted by name."""
    tasks = _tasks()
    return [tasks[n] for n in sorted(tasks)]


def queues() -> set[str]:
    """Return every queue a registered task uses."""
    return {t.queue for t in _tasks().values()}


def load(modules: Iterable[str] = ()) -> None:
    """Import the built-in tasks and `modules`, registering their tasks."""
    for module in (*BUILTIN_MODULES, *modules):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"ALARMQ_TASK_MODULES: cannot import {module!r} ({exc})") from None


# -- schemas -----------------------------------------------------------------

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    Any: {},
}


def schema_of(fn: Callable[..., Any]) -> dict[str, Any]:
    """Return a JSON Schema object for `fn`'s keyword parameters, from its type hints."""
    hints = typing.get_type_hints(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ConfigError(f"task {fn.__name__!r}: parameter {p.name!r} must be an ordinary keyword parameter")
        prop = _schema_of_type(hints.get(p.name, Any), fn.__name__, p.name)
        if p.default is p.empty:
            required.append(p.name)
        elif p.default is None or isinstance(p.default, (str, int, float, bool)):
            prop = {**prop, "default": p.default}
        props[p.name] = prop
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _schema_of_type(tp: Any, fn_name: str, param: str) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = _schema_of_type(options[0], fn_name, param) if len(options) == 1 else {}
        if type(None) in args and "type" in inner:
            return {**inner, "type": [inner["type"], "null"]}
        if len(options) != 1:
            raise ConfigError(f"task {fn_name!r}: parameter {param!r} has an unsupported union type")
        return inner
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple) or tp in (list, tuple):
        item = _schema_of_type(args[0], fn_name, param) if args else {}
        return {"type": "array", "items": item}
    if origin is dict or tp is dict:
        return {"type": "object"}
    raise ConfigError(f"task {fn_name!r}: parameter {param!r} has type {tp!r}, which JSON cannot carry")


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _types(schema: Mapping[str, Any]) -> list[str]:
    expected = schema.get("type", [])
    return [expected] if isinstance(expected, str) else list(expected)


def _is_integral_float(value: object) -> bool:
    return isinstance(value, float) and value.is_integer()


def _check_value(where: str, value: object, schema: Mapping[str, Any]) -> None:
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"{where} must be one of {schema['enum']}, got {value!r}")
    expected = schema.get("type")
    if expected is None:
        return
    allowed = _types(schema)
    for kind in allowed:
        ok = isinstance(value, _JSON_TYPES[kind]) or (kind == "integer" and _is_integral_float(value))
        if kind in ("integer", "number") and isinstance(value, bool):
            ok = False  # True is an int in Python but not a number in JSON
        if kind == "number" and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok:
            if kind == "array":
                items: list[object] = value  # type: ignore[assignment]
                for i, item in enumerate(items):
                    _check_value(f"{where}[{i}]", item, schema.get("items", {}))
            return
    raise Invalid(f"{where} must be {' or '.join(allowed)}, got {type(value).__name__} {value!r}"[:300])
