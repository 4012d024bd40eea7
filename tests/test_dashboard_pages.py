"""The dashboard's pages and assets, without a browser: who may see them, what they link, no outside URLs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis as redis_py
from flask.testing import FlaskClient

from alarmq import auth
from alarmq.web.dashboard import PAGES
from tests.conftest import AUTH

WEB = Path(__file__).resolve().parent.parent / "alarmq" / "web"
ASSETS = sorted((WEB / "static").iterdir())
TEMPLATES = sorted((WEB / "templates" / "dashboard").iterdir())


def login(client: FlaskClient, token: str) -> str:
    """Log in with `token` like the login page does and return the session's CSRF token."""
    answer = client.post("/login", json={"token": token})
    assert answer.status_code == 200
    return str(answer.json["csrf_token"])  # type: ignore[index]


@pytest.mark.parametrize(("name", "rule"), [(n, r) for n, r, _ in PAGES])
def test_each_page_needs_a_login(client: FlaskClient, name: str, rule: str) -> None:
    answer = client.get(rule, headers={"Accept": "text/html"})
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(("name", "rule"), [(n, r) for n, r, _ in PAGES])
def test_each_page_renders_its_shell_and_script(client: FlaskClient, name: str, rule: str) -> None:
    login(client, AUTH["Authorization"].removeprefix("Bearer "))
    answer = client.get(rule)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert f'src="/static/{name}.js"' in html
    assert 'href="/static/dashboard.css"' in html
    assert 'id="conn"' in html
    assert 'data-can-act="yes"' in html
    assert 'aria-current="page"' in html


def test_a_viewer_gets_read_only_pages_and_the_api_refuses_changes(client: FlaskClient, redis: redis_py.Redis) -> None:
    token = auth.add_token(redis, "v", "viewer")
    csrf = login(client, token)
    html = client.get("/schedules").get_data(as_text=True)
    assert 'data-can-act="no"' in html
    assert 'id="read-only"' in html
    assert 'id="reload"' not in html
    refused = client.post("/api/v1/scheduler/reload", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403


@pytest.mark.parametrize("asset", ASSETS, ids=lambda p: p.name)
def test_every_asset_is_served_by_alarmq(client: FlaskClient, asset: Path) -> None:
    answer = client.get(f"/static/{asset.name}")
    assert answer.status_code == 200
    assert answer.mimetype in ("text/javascript", "application/javascript", "text/css")
    answer.close()


@pytest.mark.parametrize("path", ASSETS + TEMPLATES, ids=lambda p: p.name)
def test_nothing_is_loaded_from_the_internet(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert not re.search(r"https?://", text)
    assert "@import" not in text


def test_every_page_has_its_script() -> None:
    for name, _, _ in PAGES:
        assert (WEB / "static" / f"{name}.js").is_file()
        assert (WEB / "templates" / "dashboard" / f"{name}.html").is_file()
    assert (WEB / "static" / "live.js").is_file()


def test_the_stylesheet_has_a_dark_scheme() -> None:
    assert "prefers-color-scheme: dark" in (WEB / "static" / "dashboard.css").read_text()


def test_an_alarm_has_a_detail_page_with_its_edit_form(client: FlaskClient) -> None:
    assert client.get("/alarms/home", headers={"Accept": "text/html"}).status_code == 302
    login(client, AUTH["Authorization"].removeprefix("Bearer "))
    html = client.get("/alarms/home").get_data(as_text=True)
    assert 'src="/static/alarm.js"' in html
    assert 'data-alarm-id="home"' in html
    assert 'href="/alarms" aria-current="page"' in html
    for part in ('id="chart"', 'id="flips"', 'id="notifications"', 'id="results"', 'id="alarm-form-box"'):
        assert part in html


def test_the_alarms_board_offers_forms_to_operators_only(client: FlaskClient, redis: redis_py.Redis) -> None:
    login(client, AUTH["Authorization"].removeprefix("Bearer "))
    html = client.get("/alarms").get_data(as_text=True)
    assert 'id="alarm-form-box"' in html
    assert 'id="channels-box"' in html
    viewer = client.application.test_client()
    login(viewer, auth.add_token(redis, "v", "viewer"))
    for path in ("/alarms", "/alarms/home"):
        html = viewer.get(path).get_data(as_text=True)
        assert 'data-can-act="no"' in html
        assert 'id="alarm-form-box"' not in html
        assert 'id="channels-box"' not in html


def test_an_alarm_id_in_the_page_is_escaped(client: FlaskClient) -> None:
    login(client, AUTH["Authorization"].removeprefix("Bearer "))
    html = client.get('/alarms/"><script>x').get_data(as_text=True)
    assert "<script>x" not in html


def test_the_board_marks_its_first_render_and_fetches_bars_lazily() -> None:
    script = (WEB / "static" / "alarms.js").read_text()
    assert "window.__alarmqRendered = performance.now()" in script
    assert "IntersectionObserver" in script
