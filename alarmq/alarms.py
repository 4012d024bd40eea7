"""Own the alarm lifecycle: a pure state machine of check results, with `now` passed in.

States: `unknown` (no result yet) → `ok` | `pending` (failing, fewer than
`failures_to_fire` in a row) → `firing` → back to `ok` through a `resolved`
transition after `recoveries_to_resolve` good results in a row, and not before
`keep_firing_for` seconds of firing (so a flapping target does not page twice a
minute). `disabled` stops everything. Acknowledging a firing alarm stops its
repeat notifications until it resolves; silencing pauses notifications (checks go
on) until a time. Nothing here touches Redis: the store applies these decisions
with compare-and-set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

STATES = ("unknown", "ok", "pending", "firing", "disabled")


@dataclass(frozen=True)
class Result:
    """One check's outcome."""

    ok: bool
    at: float
    value: float | None = None
    latency_ms: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the result as stored and shown."""
        return {"ok": self.ok, "at": self.at, "value": self.value, "latency_ms": self.latency_ms,
                "message": self.message}  # fmt: skip


@dataclass(frozen=True)
class Rules:
    """How many results it takes to change state."""

    failures_to_fire: int = 1
    recoveries_to_resolve: int = 1
    keep_firing_for: float = 0.0


@dataclass(frozen=True)
class State:
    """Where an alarm stands, derived only from its results and operator actions."""

    state: str = "unknown"
    since: float | None = None
    failures: int = 0
    successes: int = 0
    fired_at: float | None = None
    acked: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the state as stored."""
        return {"state": self.state, "since": self.since, "failures": self.failures, "successes": self.successes,
                "fired_at": self.fired_at, "acked": self.acked}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        """Return the state stored as `data`."""
        return cls(
            **{k: data[k] for k in ("state", "since", "failures", "successes", "fired_at", "acked") if k in data}
        )


@dataclass(frozen=True)
class Flip:
    """A recorded change of state and why it happened."""

    old: str
    new: str
    at: float
    reason: str

    @property
    def event(self) -> str | None:
        """Return the event type this flip publishes beyond alarm.checked, if any."""
        if self.new == "firing":
            return "alarm.fired"
        if self.old == "firing" and self.new == "ok":
            return "alarm.resolved"
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return the flip as stored and shown."""
        return {"old": self.old, "new": self.new, "at": self.at, "reason": self.reason}


def evaluate(rules: Rules, state: State, result: Result) -> tuple[State, Flip | None]:
    """Return the state after `result`, and the flip it causes, if any."""
    if state.state == "disabled":
        return state, None
    at = result.at
    if result.ok:
        ok = replace(state, failures=0, successes=state.successes + 1)
        if state.state == "firing":
            fired_for = at - (state.fired_at if state.fired_at is not None else at)
            if ok.successes >= rules.recoveries_to_resolve and fired_for >= rules.keep_firing_for:
                reason = f"recovered: {result.message}" if result.message else "recovered"
                return _to(ok, "ok", at, reason, fired_at=None, acked=False)
            return ok, None
        if state.state in ("unknown", "pending"):
            return _to(ok, "ok", at, result.message or "check passed")
        return ok, None
    bad = replace(state, failures=state.failures + 1, successes=0)
    if state.state == "firing":
        return bad, None
    if bad.failures >= rules.failures_to_fire:
        return _to(bad, "firing", at, result.message or "check failed", fired_at=at)
    if state.state != "pending":
        return _to(bad, "pending", at, f"{bad.failures} of {rules.failures_to_fire} failures: {result.message}")
    return bad, None


def _to(state: State, new: str, at: float, reason: str, **changes: Any) -> tuple[State, Flip]:
    flip = Flip(old=state.state, new=new, at=at, reason=reason[:300])
    return replace(state, state=new, since=at, **changes), flip


def disable(state: State, at: float) -> tuple[State, Flip | None]:
    """Return the state of an alarm switched off."""
    if state.state == "disabled":
        return state, None
    return _to(State(state=state.state, since=state.since), "disabled", at, "disabled by an operator")


def enable(state: State, at: float) -> tuple[State, Flip | None]:
    """Return the state of an alarm switched back on: unknown until its next result."""
    if state.state != "disabled":
        return state, None
    return _to(State(), "unknown", at, "enabled by an operator")


def acknowledge(state: State) -> State:
    """Return the state with the current firing acknowledged (repeat notifications stop)."""
    return replace(state, acked=True) if state.state == "firing" else state


def notification_due(
    flip: Flip | None, state: State, *, silenced: bool, last_sent: float | None, repeat_every: float, now: float
) -> str | None:
    """Return what to notify now (`fired`, `resolved`, `repeat`) or None.

    Only fired and resolved notify; a firing alarm repeats every `repeat_every`
    seconds (0: never) unless it is acknowledged. Silence holds everything back.
    """
    if silenced:
        return None
    if flip is not None and flip.event == "alarm.fired":
        return "fired"
    if flip is not None and flip.event == "alarm.resolved":
        return "resolved"
    repeating = state.state == "firing" and not state.acked and repeat_every > 0
    if repeating and (last_sent is None or now - last_sent >= repeat_every):
        return "repeat"
    return None
