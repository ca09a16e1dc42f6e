"""The manual clock, shared by every process of a deployment through the settings table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from timers.clock import ClockNotSettable, clock

from ..errors import Forbidden, InvalidInput
from ..models import Setting
from ..oversight import tallies
from . import settings

KEY = "manual_clock"


def set_clock(session: Session, instant: datetime, frozen: bool = False) -> datetime:
    if not clock.manual:
        raise Forbidden("the clock is the system clock; start with ONEWINDOW_CLOCK=manual to set it")
    if instant.tzinfo is None:
        raise InvalidInput("now: give a time zone (e.g. 2026-02-13T15:00:00+08:00)")
    try:
        clock.set(instant, frozen=frozen)
    except ClockNotSettable as exc:
        raise Forbidden(str(exc)) from None
    settings.put(session, KEY, clock.state())
    # days from the new "today" on are not closed any more: their tallies would miss what happens now
    tallies.forget(session, tallies.today())
    return clock.now()


def sync_clock(session: Session) -> None:
    """Adopt the deployment's manual clock (no-op on the system clock)."""
    if not clock.manual:
        return
    row = session.get(Setting, KEY)
    if row is not None:
        clock.adopt(row.value)
