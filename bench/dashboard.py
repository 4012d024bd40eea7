"""Measure the dashboard in Chromium: first render of the alarms board with 1,000 alarms, and event-to-page delay.

Run with alarmq's venv: `.venv/bin/python bench/dashboard.py [--alarms 1000] [--events 200]`. It starts its own
redis-server on a free port from 6471 (never :6379) and a real `python -m alarmq web`, creates the alarms with
`alarmq.monitors.create`, logs in with Playwright on Debian's /usr/bin/chromium and:
- first_render_ms: navigation start -> the board's first full build (`window.__alarmqRendered`, set by alarms.js
  from `performance.now()` once every card is in the DOM), median and max over --loads page loads;
- event_to_page_ms: `alarmq.monitors.record` stores a failed check for one alarm after another (each publishes
  `alarm.checked` and `alarm.fired`); the page's handler notes `Date.now()` once the card is rebuilt, against the
  event's `ts` (wall clock, same machine): p50/p99/max over every event that changed a card.
  event_to_socket_ms_p99 is the part up to the event's arrival on the page's WebSocket.
Progress goes to stderr; stdout gets exactly one JSON line. Every wait has a deadline, a watchdog ends the run after
--deadline seconds, and every process it starts is stopped, also on errors. Goals: first render <= 1 s,
event to page p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from _common import Processes, alarmq_env, free_port, log, start_redis, wait_until

from alarmq import connection, monitors
from alarmq.alarms import Result
from alarmq.settings import Settings

TOKEN = "bench-dashboard-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
GOAL_RENDER_MS = 1000.0
GOAL_EVENT_P99_MS = 100.0


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of `values`, nearest rank, rounded to 0.1."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 1)


def watchdog(seconds: float) -> None:
    """End the process (its finally blocks do not run, so stop children first) if the run overstays."""

    def fire() -> None:
        log(f"watchdog: still running after {seconds:.0f}s; giving up")
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main() -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between published events")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=220.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="alarmq-bench-dashboard-"))
    with Processes(workdir) as procs:
        stopper = threading.Timer(args.deadline - 15, procs.stop_all)
        stopper.daemon = True
        stopper.start()
        watchdog(args.deadline)
        redis_url = start_redis(procs, free_port(6471), workdir)
        port = free_port(8471)
        env = alarmq_env(redis_url, TOKEN, workdir / "data", PORT=str(port))
        conn = connection.connect(Settings(redis_url=redis_url, api_token=TOKEN, data_dir=workdir / "data"))
        log(f"creating {args.alarms} alarms")
        now = time.time()
        ids = [f"a{i:04d}" for i in range(args.alarms)]
        for aid in ids:
            monitors.create(conn, {"id": aid, "name": aid, "kind": "http", "interval": 3600,
                                   "config": {"url": "http://127.0.0.1:9/"}}, now)  # fmt: skip
        procs.start("web", [sys.executable, "-m", "alarmq", "web"], env, workdir)
        base = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            procs.pid("web")
            try:
                return requests.get(f"{base}/api/v1/health", timeout=2).status_code in (200, 503)
            except requests.ConnectionError:
                return False

        wait_until(serving, 30, "alarmq web answers")
        api_ms = []
        for _ in range(3):
            started = time.perf_counter()
            requests.get(f"{base}/api/v1/alarms", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
            api_ms.append((time.perf_counter() - started) * 1000)
        log(f"GET /api/v1/alarms: {', '.join(f'{v:.0f}' for v in api_ms)} ms")
        renders: list[float] = []
        delays: list[float] = []
        arrivals: list[float] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base).new_page()
                page.set_default_timeout(20_000)
                page.goto("/login?next=/alarms")
                page.fill("#token", TOKEN)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/alarms")
                for i in range(args.loads):
                    page.goto("/alarms")
                    page.wait_for_function("window.__alarmqRendered !== undefined", timeout=20_000)
                    cards = page.locator("#board article").count()
                    if cards != args.alarms:
                        raise RuntimeError(f"the board shows {cards} cards, not {args.alarms}")
                    renders.append(float(page.evaluate("window.__alarmqRendered")))
                    log(f"load {i + 1}: first render {renders[-1]:.0f} ms")
                page.wait_for_selector("#conn[data-state=connected]", timeout=20_000)
                page.wait_for_timeout(1000)  # let the (re)connect's resync build settle
                page.evaluate("window.__alarmqSeen.length = 0")
                log(
                    f"recording {args.events} failed checks (each fires its alarm), every {args.interval * 1000:.0f} ms"
                )
                step = max(1, len(ids) // args.events)
                for n in range(args.events):
                    aid = ids[(n * step) % len(ids)]
                    monitors.record(conn, aid, Result(ok=False, at=time.time(), message=f"bench {n}"), time.time())
                    time.sleep(args.interval)
                wait_until(
                    lambda: page.evaluate("window.__alarmqSeen.length") >= 2 * args.events, 20, "every event shown"
                )
                seen: list[Any] = page.evaluate("window.__alarmqSeen")
                delays = [float(shown - ts * 1000) for _, ts, shown, _ in seen]
                arrivals = [float(arrived - ts * 1000) for _, ts, _, arrived in seen]
                log("delays in publish order (ms): " + " ".join(f"{d:.0f}" for d in delays))
                log("of which publish to arrival (ms): " + " ".join(f"{d:.0f}" for d in arrivals))
                last = ids[((args.events - 1) * step) % len(ids)]
                state = page.locator(f"#alarm-{last}").get_attribute("data-state")
                if state != "firing":
                    raise RuntimeError(f"the last alarm to fire shows {state!r} on the page")
            finally:
                browser.close()
    result = {
        "bench": "dashboard",
        "alarms": args.alarms,
        "first_render_ms_median": round(statistics.median(renders), 1),
        "first_render_ms_max": round(max(renders), 1),
        "first_render_goal_ms": GOAL_RENDER_MS,
        "api_alarms_list_ms_median": round(statistics.median(api_ms), 1),
        "events": len(delays),
        "event_to_page_ms_p50": pct(delays, 0.5),
        "event_to_page_ms_p99": pct(delays, 0.99),
        "event_to_page_ms_max": round(max(delays), 1),
        "event_to_socket_ms_p99": pct(arrivals, 0.99),
        "event_to_page_goal_p99_ms": GOAL_EVENT_P99_MS,
        "goals_met": max(renders) <= GOAL_RENDER_MS and pct(delays, 0.99) <= GOAL_EVENT_P99_MS,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
