"""The dashboard in a real browser (Debian's Chromium via Playwright) against real web, worker and scheduler."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
import requests

from alarmq import auth, schedules
from tests.conftest import AUTH, ROOT, TOKEN, Processes, free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM} (CI installs it)"),
]
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=15_000)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = ROOT / "artifacts" / "screenshots"
WAIT = 15_000  # ms


class Stack:
    """A running web, worker and scheduler, and how to reach the web."""

    def __init__(self, processes: Processes) -> None:
        self.processes = processes
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.web: Any = None

    def start_web(self) -> None:
        """Start (or restart) the web process on the stack's port and wait until it answers."""
        self.web = self.processes.start("web", env={"PORT": str(self.port)})
        wait_for(self._serving, timeout=20, what="the web process")

    def stop_web(self) -> None:
        """Stop the web process the way a deploy does (SIGTERM) and wait for it to exit."""
        os.killpg(self.web.pid, signal.SIGTERM)
        self.web.wait(20)

    def _serving(self) -> bool:
        try:
            return requests.get(f"{self.base}/api/v1/health", timeout=2).status_code in (200, 503)
        except requests.ConnectionError:
            return False

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the API with the admin token and return the JSON answer."""
        answer = requests.request(method, f"{self.base}/api/v1{path}", headers=AUTH, timeout=10, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None


@pytest.fixture
def stack(processes: Processes, redis: redis_py.Redis) -> Stack:
    """Start web, worker and scheduler; wait for a worker and a scheduler leader."""
    stack = Stack(processes)
    processes.start("worker")
    processes.start("scheduler")
    stack.start_web()
    wait_for(lambda: stack.api("GET", "/scheduler")["leader"], timeout=20, what="a scheduler leader")
    wait_for(lambda: stack.api("GET", "/health")["workers"], timeout=20, what="a worker")
    return stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Launch Debian's Chromium once for the module."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """Return a function that opens a page of the stack logged in with a token (admin by default)."""
    contexts: list[Any] = []

    def open_page(path: str, token: str = TOKEN) -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=stack.base)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(f"/login?next={path}")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{stack.base}{path}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
        return page

    yield open_page
    for context in contexts:
        context.close()


class Target:
    """A tiny HTTP server an alarm can check; stop() makes it fail."""

    def __init__(self) -> None:
        class Ok(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        """Stop answering: connections are refused from now on."""
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.running = False


@pytest.fixture
def target() -> Iterator[Target]:
    """Start an HTTP target for an alarm."""
    t = Target()
    yield t
    t.stop()


def add_tick(stack: Stack, every: int = 1) -> None:
    stack.api("POST", "/schedules", json={"id": "tick", "task": "echo", "kwargs": {"message": "t"}, "interval": every})


def add_alarm(stack: Stack, url: str, interval: int = 2) -> None:
    stack.api("POST", "/alarms", json={"id": "home", "name": "Home page", "kind": "http", "interval": interval,
                                       "config": {"url": url, "timeout": 2}})  # fmt: skip


def test_every_page_renders_live_and_is_captured(open_page: Any, stack: Stack, target: Target) -> None:
    add_tick(stack, every=5)
    add_alarm(stack, target.url)
    stack.api("POST", "/jobs", json={"task": "echo", "kwargs": {"message": "hello"}})
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page("/")
    expect(page.locator("#tiles .tile").first).to_be_visible()
    expect(page.locator("#feed li").first).to_be_visible()
    expect(page.locator(".tile", has_text="Workers")).to_contain_text("1")
    page.screenshot(path=str(SHOTS / "overview.png"))
    checks = {
        "alarms": "#alarm-home[data-state=ok]",
        "schedules": "#schedule-tick .ledger-body tr[data-outcome]",
        "jobs": "#jobs tbody tr[data-status=finished]",
        "workers": "#workers tbody tr",
        "audit": "#audit tbody tr",
    }
    for name, ready in checks.items():
        page.goto(f"/{name}")
        expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
        expect(page.locator(ready).first).to_be_attached()
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_viewer_can_change_nothing(open_page: Any, stack: Stack, redis: redis_py.Redis, target: Target) -> None:
    add_tick(stack, every=5)
    add_alarm(stack, target.url)
    viewer = auth.add_token(redis, "v", "viewer")
    page = open_page("/schedules", token=viewer)
    expect(page.locator("#schedule-tick")).to_be_visible()
    expect(page.locator("#read-only")).to_be_visible()
    for path, ready in (("/schedules", "#schedule-tick"), ("/alarms", "#alarm-home"), ("/jobs", "#jobs")):
        page.goto(path)
        expect(page.locator(ready)).to_be_visible()
        assert page.locator("main button:enabled").count() == 0
        assert page.locator("main input[type=checkbox]:enabled").count() == 0
    status = page.evaluate(
        """async () => {
            const s = await (await fetch('/api/v1/session')).json();
            const r = await fetch('/api/v1/schedules/tick/pause', {method: 'POST',
              headers: {'X-CSRF-Token': s.csrf_token, 'Content-Type': 'application/json'}, body: '{"seconds": 60}'});
            return r.status;
        }"""
    )
    assert status == 403
    assert not schedules.load(redis, "tick")["paused_until"]


def test_the_schedule_panel_pauses_retimes_and_runs(open_page: Any, stack: Stack, redis: redis_py.Redis) -> None:
    add_tick(stack, every=1)
    jobs_page = open_page("/jobs")
    page = open_page("/schedules")
    card = page.locator("#schedule-tick")
    card.locator("summary").click()
    expect(card.locator("tr[data-outcome=finished]").first).to_be_visible()

    card.locator("button[data-act=pause]").click()
    expect(card.locator(".badge", has_text="paused")).to_be_visible()
    paused_at = time.time()
    expect(card.locator("tr[data-outcome=skipped]").first).to_be_visible()

    def since_pause() -> list[dict[str, Any]]:
        return [r for r in stack.api("GET", "/schedules/tick/runs")["runs"] if r["at"] > paused_at + 1]

    ran = wait_for(since_pause, timeout=10, what="a slot after the pause")
    assert {r["outcome"] for r in ran} == {"skipped"}

    field = card.locator("input[data-act=retime-input]")
    field.fill("61 * * * *")
    expect(card.get_by_test_id("retime-error")).to_contain_text("not valid")
    card.locator("button[data-act=retime]").click()
    expect(card.get_by_test_id("retime-error")).to_be_visible()
    stored = schedules.load(redis, "tick")
    assert (stored["interval"], stored["cron"]) == (1, None)
    field.fill("*/5 * * * *")
    expect(card.get_by_test_id("retime-error")).to_be_hidden()
    expect(card.locator(".preview li")).to_have_count(5)

    card.locator("button[data-act=run]").click()
    expect(card.locator("tr[data-outcome=finished]", has_text="run now").first).to_be_visible()
    expect(jobs_page.locator("#jobs tbody tr[id^='job-sched-tick-manual'][data-status=finished]")).to_have_count(1)


def test_an_alarm_fires_on_its_card_and_is_acknowledged(open_page: Any, stack: Stack, target: Target) -> None:
    add_alarm(stack, target.url, interval=2)
    page = open_page("/alarms")
    card = page.locator("#alarm-home")
    expect(card).to_have_attribute("data-state", "ok")
    expect(card.locator(".bar .pass").first).to_be_visible()
    target.stop()
    # Within one interval (2 s), with room for the event's trip and a busy machine.
    expect(card).to_have_attribute("data-state", "firing", timeout=8_000)
    card.locator("button[data-act=ack]").click()
    expect(card.locator(".flags")).to_contain_text("acknowledged")
    expect(card.locator("button[data-act=ack]")).to_have_count(0)
    assert stack.api("GET", "/alarms/home")["acked"] is True


def test_the_connection_indicator_recovers_after_the_web_restarts(open_page: Any, stack: Stack) -> None:
    page = open_page("/")
    conn = page.locator("#conn")
    stack.stop_web()
    expect(conn).to_have_attribute("data-state", "reconnecting")
    stack.start_web()
    expect(conn).to_have_attribute("data-state", "connected", timeout=20_000)
    stack.api("POST", "/jobs", json={"task": "echo", "kwargs": {"message": "after restart"}})
    expect(page.locator("#feed li[data-type='job.finished']").first).to_be_visible()


def test_an_alarm_is_created_from_the_form_with_inline_errors(open_page: Any, stack: Stack, target: Target) -> None:
    stack.api("POST", "/channels", json={"id": "ops", "kind": "webhook", "config": {"url": target.url}})
    page = open_page("/alarms")
    page.locator("#new-alarm summary").click()
    form = page.get_by_test_id("alarm-form")
    form.get_by_label("Id").fill("site")
    form.get_by_label("Name").fill("Site")
    form.get_by_label("Kind").select_option("tcp")
    expect(form.get_by_label("Port")).to_be_visible()
    form.get_by_label("Kind").select_option("http")
    form.get_by_label("URL").fill("ftp://nowhere")
    form.get_by_role("button", name="Create alarm").click()
    expect(form.get_by_test_id("form-error")).to_contain_text("config.url must start with http")
    expect(form.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("URL")).to_be_focused()
    assert stack.api("GET", "/alarms")["alarms"] == []

    form.get_by_label("URL").fill(target.url)
    form.get_by_label("Interval (s)").fill("2")
    form.get_by_label("Channels").select_option("ops")
    form.get_by_role("button", name="Create alarm").click()
    card = page.locator("#alarm-site")
    expect(card).to_have_attribute("data-state", "ok")
    assert stack.api("GET", "/alarms/site")["channels"] == ["ops"]

    config = {"url": target.url, "headers": {"X-Probe": "dashboard"}}
    stack.api("PATCH", "/alarms/site", json={"config": config})
    card.get_by_role("link", name="Site").click()
    page.wait_for_url(f"{stack.base}/alarms/site")
    expect(page.locator("#chart svg circle.pass").first).to_be_attached()
    edit = page.get_by_test_id("alarm-form")
    edit.get_by_label("Interval (s)").fill("0")
    edit.get_by_role("button", name="Save alarm").click()
    expect(edit.get_by_test_id("form-error")).to_contain_text("interval must be")
    edit.get_by_label("Interval (s)").fill("3")
    edit.get_by_role("button", name="Save alarm").click()
    expect(page.locator("#alarm")).to_contain_text("every 3s")
    assert stack.api("GET", "/alarms/site")["config"]["headers"] == {"X-Probe": "dashboard"}
    target.stop()
    expect(page.locator("#alarm-site")).to_have_attribute("data-state", "firing", timeout=10_000)
    expect(page.locator("#flips tbody tr").first).to_contain_text("firing")


def test_the_jobs_page_pages_with_a_more_button(open_page: Any, stack: Stack) -> None:
    for i in range(130):
        stack.api("POST", "/jobs", json={"task": "echo", "kwargs": {"message": f"m{i}"}})
    page = open_page("/jobs")
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(100)
    page.get_by_role("button", name="More").click()
    expect(rows).to_have_count(130)
    expect(page.get_by_role("button", name="More")).to_be_hidden()
    stack.api("POST", "/jobs", json={"task": "echo", "kwargs": {"message": "late"}})
    expect(rows).to_have_count(131)


def test_a_channel_is_created_and_edited_from_the_panel(open_page: Any, stack: Stack) -> None:
    page = open_page("/alarms")
    page.locator("#channels-panel summary").click()
    page.get_by_role("button", name="New channel").click()
    form = page.get_by_test_id("channel-form")
    expect(form.get_by_label("Id")).to_be_focused()
    form.get_by_label("Id").fill("ops")
    form.get_by_label("URL").fill("not a url")
    form.get_by_role("button", name="Create channel").click()
    expect(form.get_by_test_id("form-error")).to_contain_text("config.url must be an http")
    expect(form.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    assert stack.api("GET", "/channels")["channels"] == []
    form.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    form.get_by_role("button", name="Create channel").click()
    expect(page.locator("#channel-ops")).to_contain_text("127.0.0.1:9/hook")
    expect(page.get_by_test_id("alarm-form").locator("select[name=channels] option[value=ops]")).to_be_attached()
    page.get_by_role("button", name="Edit ops").click()
    edit = page.get_by_test_id("channel-form")
    edit.get_by_label("Description").fill("on call")
    edit.get_by_role("button", name="Save channel").click()
    expect(page.locator("#channel-ops")).to_be_visible()
    wait_for(lambda: stack.api("GET", "/channels/ops")["description"] == "on call", timeout=10, what="the edit")


def test_the_schedule_panel_works_from_the_keyboard(open_page: Any, stack: Stack, redis: redis_py.Redis) -> None:
    add_tick(stack, every=5)
    page = open_page("/schedules")
    expect(page.locator("#schedule-tick")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    for _ in range(60):  # Tab through the page until the tick schedule's Pause button has the focus
        page.keyboard.press("Tab")
        label = page.evaluate("document.activeElement.textContent.trim()")
        inside = page.evaluate("!!document.activeElement.closest('#schedule-tick')")
        if label == "Pause" and inside:
            break
    else:
        raise AssertionError("the Pause button of schedule tick cannot be reached with Tab")
    page.keyboard.press("Enter")
    wait_for(lambda: schedules.load(redis, "tick")["paused_until"], timeout=10, what="the pause to be stored")


def test_the_pages_are_readable_in_dark_mode(browser: Any, stack: Stack) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=stack.base, color_scheme="dark")
    page = context.new_page()
    page.goto("/login?next=/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("() => getComputedStyle(document.body).color")
    assert _luminance(background) < 0.25 < 0.6 < _luminance(text), (background, text)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview-dark.png"))
    context.close()


def _luminance(css_color: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
