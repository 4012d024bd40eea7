"""Check the deploy files statically: compose schema and invariants, Procfile, Dockerfile, and the commands they run."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from jsonschema.validators import validator_for

from alarmq.cli import main

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "scheduler")
DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def compose() -> dict[str, Any]:
    """Load docker-compose.yml with its anchors and merge keys resolved."""
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def compose_errors(document: dict[str, Any]) -> list[str]:
    """Validate a compose document against the compose-spec schema that check-jsonschema vendors."""
    vendor = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    schema = json.loads((vendor / "compose-spec.json").read_text())
    cls = validator_for(schema)
    cls.check_schema(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in cls(schema).iter_errors(document)]


def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = (line.strip() for line in text.splitlines())
    return [(i.upper(), a.strip()) for i, _, a in (ln.partition(" ") for ln in lines if ln and not ln.startswith("#"))]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment as a mapping, whichever form the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def seconds(duration: str) -> float:
    """Convert a compose duration such as 1m30s to seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a compose duration: {duration!r}"
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def procfile() -> dict[str, list[str]]:
    """Return the Procfile's process types and their argv."""
    lines = (line.partition(":") for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    return {kind.strip(): shlex.split(cmd) for kind, _, cmd in lines}


def deployed_commands() -> list[tuple[str, list[str]]]:
    """Collect every argv the deploy files run ($PORT as 8000), labelled by where it comes from."""
    found = [(f"compose {name}", list(compose()["services"][name]["command"])) for name in APP_SERVICES]
    found += [(f"Procfile {k}", [a.replace("$PORT", "8000") for a in argv]) for k, argv in procfile().items()]
    cmd = [args for inst, args in dockerfile() if inst == "CMD"][-1]
    found.append(("Dockerfile CMD", json.loads(cmd) if cmd.startswith("[") else shlex.split(cmd)))
    return found


def test_compose_file_matches_the_compose_spec() -> None:
    assert compose_errors(compose()) == []


def test_compose_spec_validation_rejects_an_unknown_depends_on_condition() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_ready"
    errors = compose_errors(broken)
    assert errors, "the schema accepted condition: service_ready"
    assert any("worker" in e for e in errors)


def parse_cli(args: list[str]) -> None:
    """Parse `alarmq ARGS` as the CLI would, raising click's UsageError on an unknown command or option."""
    ctx = main.make_context("alarmq", list(args), resilient_parsing=False)
    cmd_name, cmd, rest = main.resolve_command(ctx, list(args))
    assert cmd is not None and cmd_name is not None
    cmd.make_context(cmd_name, rest, parent=ctx, resilient_parsing=False)


COMMANDS = deployed_commands()


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_deployed_command_exists_in_the_cli_with_its_options(where: str, argv: list[str]) -> None:
    assert argv[0] == "alarmq", f"{where} does not run alarmq: {argv}"
    parse_cli(argv[1:])


@pytest.mark.parametrize("args", [["wrker"], ["worker", "--threads", "2"], ["web", "--port", "$PORT"]])
def test_cli_parse_check_rejects_unknown_commands_and_bad_options(args: list[str]) -> None:
    with pytest.raises(click.UsageError):
        parse_cli(args)


def test_every_app_service_waits_for_a_healthy_redis() -> None:
    services = compose()["services"]
    assert "healthcheck" in services["redis"]
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_worker_gets_time_to_finish_its_running_job_on_stop() -> None:
    assert seconds(compose()["services"]["worker"]["stop_grace_period"]) >= 30


def test_redis_persists_with_an_append_only_file() -> None:
    command = compose()["services"]["redis"]["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert any(v.split(":")[-1] == "/data" for v in compose()["services"]["redis"]["volumes"])


def test_no_service_allows_an_embedded_redis() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert environment(service).get("ALARMQ_EMBEDDED_REDIS", "0") == "0", name
    for name in APP_SERVICES:
        assert environment(services[name])["ALARMQ_EMBEDDED_REDIS"] == "0", name
        assert environment(services[name])["REDIS_URL"] == "redis://redis:6379/0", name


def test_procfile_web_binds_all_interfaces_on_the_platform_port() -> None:
    procs = procfile()
    assert set(procs) == set(APP_SERVICES)
    web = procs["web"]
    assert web[web.index("--host") + 1] == "0.0.0.0"
    assert web[web.index("--port") + 1] == "$PORT"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for inst, args in dockerfile() if inst == "USER"]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_forbids_an_embedded_redis() -> None:
    env = dict(pair.partition("=")[::2] for inst, args in dockerfile() if inst == "ENV" for pair in shlex.split(args))
    assert env.get("ALARMQ_EMBEDDED_REDIS") == "0"


def test_dockerfile_cmd_is_exec_form() -> None:
    cmds = [args for inst, args in dockerfile() if inst == "CMD"]
    assert cmds, "no CMD instruction"
    argv = json.loads(cmds[-1])
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)
