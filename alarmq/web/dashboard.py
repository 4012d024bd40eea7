"""Serve the dashboard's pages: server-rendered shells whose scripts read the JSON API and follow /ws."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, g, render_template

from alarmq import auth

bp = Blueprint("dashboard", __name__, template_folder="templates")

PAGES = (
    ("overview", "/", "Overview"),
    ("alarms", "/alarms", "Alarms"),
    ("schedules", "/schedules", "Schedules"),
    ("jobs", "/jobs", "Jobs"),
    ("workers", "/workers", "Workers"),
    ("audit", "/audit", "Audit log"),
)
ACTING_ROLES = ("operator", "admin")


def can_act(principal: auth.Principal) -> bool:
    """Return True if `principal` may change things (operators and admins)."""
    return principal.role in ACTING_ROLES


def _page(name: str, template: str | None = None, title: str | None = None, **extra: str) -> str:
    """Render one page shell for the logged-in principal."""
    principal: auth.Principal = g.principal
    return render_template(
        f"dashboard/{template or name}.html",
        page=name,
        script=template or name,
        title=title or dict((n, t) for n, _, t in PAGES)[name],
        pages=PAGES,
        principal=principal,
        can_act=can_act(principal),
        **extra,
    )


def _view(name: str) -> Callable[[], str]:
    def view() -> str:
        return _page(name)

    view.__name__ = name
    view.__doc__ = f"Show the {name} page."
    return view


for _name, _rule, _title in PAGES:
    bp.add_url_rule(_rule, _name, _view(_name))


@bp.get("/alarms/<alarm_id>")
def alarm(alarm_id: str) -> str:
    """Show one alarm: state, results chart, flips, notifications and (for operators) its edit form."""
    return _page("alarms", template="alarm", title=f"Alarm {alarm_id}", alarm_id=alarm_id)
