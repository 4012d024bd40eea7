"""Dependencies point one way: the domain never imports Flask or the web package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "alarmq"
DOMAIN = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in {"cli", "__main__"})
WEB_ONLY = ("flask", "flask_sock", "werkzeug", "rq_dashboard", "gunicorn", "waitress")


def imports_of(path: Path) -> set[str]:
    """Return every module name `path` imports, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("module", DOMAIN)
def test_domain_module_imports_neither_flask_nor_the_web(module: str) -> None:
    imported = imports_of(PACKAGE / f"{module}.py")
    bad = {m for m in imported if m.split(".")[0] in WEB_ONLY or m.startswith("alarmq.web")}
    assert bad == set(), f"alarmq/{module}.py imports {sorted(bad)}"


def test_importing_the_domain_loads_no_flask() -> None:
    modules = ", ".join(f"alarmq.{m}" for m in DOMAIN if m != "__init__")
    code = f"import sys, {modules}; bad = [m for m in sys.modules if m.split('.')[0] in {WEB_ONLY!r}]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_nothing_outside_cli_and_web_imports_the_web_package() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "web" or path.stem == "cli":
            continue
        assert not any(m.startswith("alarmq.web") for m in imports_of(path)), path
