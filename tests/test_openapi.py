"""Property-based: schemathesis drives every documented route of a live web process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import TOKEN, Processes, free_port, wait_for

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(processes: Processes, tmp_path: Path) -> None:
    port = free_port()
    processes.start("web", env={"PORT": str(port)})
    base = f"http://127.0.0.1:{port}/api/v1"

    def up() -> bool:
        try:
            return requests.get(f"{base}/openapi.json", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(up, timeout=20, what="the web process")
    # Every check on the job and task routes. The schedule, alarm and channel
    # routes take cron expressions, zones, times and per-kind configs whose
    # validity no JSON Schema can state, so
    # schemathesis's "valid data must be accepted" check would flag them; they
    # get every check that a response can fail (server errors, status codes,
    # content types, response schemas and headers).
    core = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    runs = [
        ["--checks", "all", "--exclude-path-regex", "/schedule|/channel|/alarm|/heartbeat|/metric"],
        [
            "--checks",
            f"{core},response_headers_conformance",
            "--include-path-regex",
            "/schedule|/channel|/alarm|/heartbeat|/metric",
        ],
    ]
    for selection in runs:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{base}/openapi.json",
             "--header", f"Authorization: Bearer {TOKEN}", *selection,
             "--max-examples", "40", "--seed", "1", "--no-color"],
            check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-4000:]
        assert " passed" in result.stdout
