"""The periodic jobs the scheduler runs. Each is one transaction, idempotent, and catches up by itself:
a sweep after downtime records every missed warning and breach at its true instant."""

from __future__ import annotations

import os
import socket

from timers.clock import now

from . import cases, delivery, settings, sla, tallies, window
from .clock_store import sync_clock
from .db import Database


def _heartbeat(session, job: str) -> None:
    settings.put(session, f"heartbeat:{job}",
                 {"at": now().isoformat(), "host": socket.gethostname(), "pid": os.getpid()})


SWEEP_BATCH = int(os.environ.get("ONEWINDOW_SWEEP_BATCH", "2000"))


def sweep_clocks(db: Database) -> sla.SweepResult:
    """Sweep in batches of one transaction each, so a long outage is caught up in one run and the
    rows a batch locks are held briefly (other schedulers skip them and take the next ones)."""
    total = sla.SweepResult()

    def batch(session):
        sync_clock(session)
        return sla.sweep(session, batch=SWEEP_BATCH)

    while True:
        result = db.transaction(batch)
        total.warnings += result.warnings
        total.breaches += result.breaches
        if result.warnings + result.breaches == 0:
            break
    db.transaction(lambda session: _heartbeat(session, "sweep_clocks"))
    return total


def fire_timers(db: Database) -> int:
    """Fire due BPMN timers, in batches of one transaction each."""
    total = 0

    def batch(session):
        sync_clock(session)
        return cases.fire_due_timers(session)

    while (fired := db.transaction(batch)) > 0:
        total += fired
    db.transaction(lambda session: _heartbeat(session, "fire_timers"))
    return total


def _in_one_transaction(db: Database, job: str, action):
    """A job whose whole run is one transaction: adopt the clock, act, leave a heartbeat."""
    def work(session):
        sync_clock(session)
        result = action(session)
        _heartbeat(session, job)
        return result
    return db.transaction(work)


def expire_tolerated(db: Database) -> int:
    """容缺受理 cases whose materials never came by the deadline end."""
    return _in_one_transaction(db, "expire_tolerated", window.expire_tolerated)


def deliver_alerts(db: Database) -> tuple[int, int]:
    return _in_one_transaction(db, "deliver_alerts", delivery.deliver_due)


def tally_days(db: Database) -> int:
    """Tally the closed days not tallied yet (the statistics read these)."""
    with db.read() as session:
        sync_clock(session)
    built = tallies.build_missing(db)
    db.transaction(lambda session: _heartbeat(session, "tally_days"))
    return built


JOBS = {"fire_timers": fire_timers, "sweep_clocks": sweep_clocks, "expire_tolerated": expire_tolerated,
        "deliver_alerts": deliver_alerts, "tally_days": tally_days}


def run_job(db: Database, name: str):
    return JOBS[name](db)
