"""The alarm state machine, driven by results with their own timestamps: every transition."""

from __future__ import annotations

from alarmq.alarms import (
    Flip,
    Result,
    Rules,
    State,
    acknowledge,
    disable,
    enable,
    evaluate,
    notification_due,
)


def run(rules: Rules, outcomes: list[bool], start: float = 0.0, step: float = 10.0) -> tuple[State, list[Flip]]:
    state, flips = State(), []
    for i, ok in enumerate(outcomes):
        state, flip = evaluate(rules, state, Result(ok=ok, at=start + i * step, message="up" if ok else "down"))
        if flip:
            flips.append(flip)
    return state, flips


def path(flips: list[Flip]) -> list[str]:
    return [f"{f.old}>{f.new}" for f in flips]


def test_first_good_result_takes_unknown_to_ok() -> None:
    state, flips = run(Rules(), [True, True])
    assert state.state == "ok" and path(flips) == ["unknown>ok"]


def test_failures_go_pending_then_fire_at_the_threshold() -> None:
    state, flips = run(Rules(failures_to_fire=3), [True, False, False, False, False])
    assert path(flips) == ["unknown>ok", "ok>pending", "pending>firing"]
    assert flips[-1].event == "alarm.fired" and flips[-1].at == 30
    assert state.state == "firing" and state.fired_at == 30 and state.since == 30


def test_pending_recovers_without_ever_firing() -> None:
    _, flips = run(Rules(failures_to_fire=3), [True, False, False, True])
    assert path(flips) == ["unknown>ok", "ok>pending", "pending>ok"]
    assert all(f.event is None for f in flips)


def test_resolve_needs_the_configured_recoveries_in_a_row() -> None:
    _, flips = run(Rules(recoveries_to_resolve=2), [False, True, False, True, True])
    assert path(flips) == ["unknown>firing", "firing>ok"]
    assert flips[-1].event == "alarm.resolved" and flips[-1].at == 40


def test_keep_firing_for_holds_a_flapping_target_in_firing() -> None:
    _, flips = run(Rules(keep_firing_for=60), [False, True, False, True, True, True, True, True])
    assert path(flips) == ["unknown>firing", "firing>ok"]
    assert flips[-1].at == 60  # the first good result 60 s after it fired


def test_disabled_alarms_ignore_results_and_enable_starts_unknown() -> None:
    state, _ = run(Rules(), [False])
    state, flip = disable(state, 15)
    assert flip is not None and flip.new == "disabled"
    assert evaluate(Rules(), state, Result(ok=True, at=20)) == (state, None)
    state, flip = enable(state, 25)
    assert state.state == "unknown" and flip is not None and flip.reason == "enabled by an operator"


def test_ack_stops_repeats_until_resolved() -> None:
    state, flips = run(Rules(), [False])
    assert notification_due(flips[0], state, silenced=False, last_sent=None, repeat_every=300, now=0) == "fired"
    assert notification_due(None, state, silenced=False, last_sent=0, repeat_every=300, now=299) is None
    assert notification_due(None, state, silenced=False, last_sent=0, repeat_every=300, now=300) == "repeat"
    acked = acknowledge(state)
    assert acked.acked and notification_due(None, acked, silenced=False, last_sent=0, repeat_every=300, now=900) is None
    resolved, flip = evaluate(Rules(), acked, Result(ok=True, at=1000))
    assert resolved.state == "ok" and resolved.acked is False
    assert notification_due(flip, resolved, silenced=False, last_sent=0, repeat_every=300, now=1000) == "resolved"
    assert acknowledge(resolved) == resolved  # nothing to acknowledge while ok


def test_silence_holds_back_every_notification() -> None:
    state, flips = run(Rules(), [False])
    assert notification_due(flips[0], state, silenced=True, last_sent=None, repeat_every=60, now=0) is None
