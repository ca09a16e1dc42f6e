"""The project's one clock.

Everything that needs "now" asks `clock.now()`. In production it is the system clock; a deployment
started with ONEWINDOW_CLOCK=manual may have it set (demos, tests). A manual clock keeps the offset
from the system clock so time keeps moving after it is set, unless frozen.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class ClockNotSettable(RuntimeError):
    """The clock is the system clock; setting it is refused."""


def _system_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    def __init__(self, manual: bool = False) -> None:
        self.manual = manual
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return _system_now() + self._offset

    def set(self, instant: datetime, frozen: bool = False) -> None:
        if not self.manual:
            raise ClockNotSettable("the clock can only be set when ONEWINDOW_CLOCK=manual")
        if instant.tzinfo is None:
            raise ValueError("the instant must carry a time zone")
        instant = instant.astimezone(UTC)
        with self._lock:
            if frozen:
                self._frozen = instant
            else:
                self._frozen = None
                self._offset = instant - _system_now()

    def state(self) -> dict:
        """What another process needs to show the same time: offset or frozen instant."""
        with self._lock:
            return {"offset": self._offset.total_seconds(),
                    "frozen": self._frozen.isoformat() if self._frozen else None}

    def adopt(self, state: dict) -> None:
        """Take over a state written by another process of the deployment (manual clocks only)."""
        if not self.manual:
            return
        with self._lock:
            self._offset = timedelta(seconds=float(state.get("offset") or 0))
            frozen = state.get("frozen")
            self._frozen = datetime.fromisoformat(frozen) if frozen else None

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            if not self.manual:
                raise ClockNotSettable("the clock can only be moved when ONEWINDOW_CLOCK=manual")
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta


clock = Clock(manual=os.environ.get("ONEWINDOW_CLOCK", "").lower() == "manual")


def now() -> datetime:
    return clock.now()


def wall_now() -> datetime:
    """Real time, whatever the deployment's clock says: what credentials expire by (a demo's manual
    clock set a year ahead must not expire every token, nor one set back keep them for ever)."""
    return _system_now()


def to_local(instant: datetime) -> datetime:
    """Show an instant in the hall's time zone."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(SHANGHAI)


def as_utc(instant: datetime) -> datetime:
    """Databases may hand back naive datetimes (SQLite); they are stored as UTC."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)
