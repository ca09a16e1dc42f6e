"""Counting attempts before they are tried: sign-ins (per username and per address) and applicants'
tracking look-ups (per case number and address).

An attempt is counted first, by an UPDATE that only goes through while its key is not waiting out a
back-off (the row is locked to the end of the transaction on PostgreSQL; SQLite writes one at a time),
so concurrent guesses cannot slip past the count. A success takes its count back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from timers.clock import wall_now

from ..db import insert_ignoring_duplicates
from ..errors import DomainError
from ..models import LoginThrottle


class TooManyAttempts(DomainError):
    """Refused for now: too many failed attempts for this key."""

    code = "too_many_attempts"
    http_status = 429


def take(session: Session, key: str, wait_after: Callable[[int], timedelta | None], lock_after: int | None = None,
         locked_message: str = "locked after too many failed attempts") -> int:
    """Count an attempt for `key`; return its number, or raise TooManyAttempts (nothing counted)."""
    at = wall_now()
    session.execute(insert_ignoring_duplicates(session, LoginThrottle, ["key"]).values(
        key=key, failures=0, locked=False))
    attempt = session.execute(
        update(LoginThrottle).where(
            LoginThrottle.key == key, LoginThrottle.locked.is_(False),
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= at))
        .values(failures=LoginThrottle.failures + 1, last_failure_at=at)
        .returning(LoginThrottle.failures)).scalar()
    if attempt is None:
        row = session.get(LoginThrottle, key)
        if row.locked:
            raise TooManyAttempts(locked_message)
        seconds = max(1, int((row.locked_until - at).total_seconds()) + 1)
        raise TooManyAttempts("too many failed attempts; try again in {seconds} s",
                              {"seconds": seconds}, retry_after=seconds)
    values: dict = {}
    wait = wait_after(attempt)
    if wait:  # the next attempt waits
        values["locked_until"] = at + wait
    if lock_after is not None and attempt >= lock_after:
        values["locked"] = True
    if values:
        session.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(**values))
    return attempt


def forgive(session: Session, key: str, entirely: bool = True) -> None:
    """A success: the key starts afresh, or (a shared key such as an address) takes one attempt back."""
    if entirely:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
    else:
        session.execute(update(LoginThrottle).where(LoginThrottle.key == key, LoginThrottle.failures > 0)
                        .values(failures=LoginThrottle.failures - 1))
