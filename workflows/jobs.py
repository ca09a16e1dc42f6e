"""The periodic jobs the scheduler runs. Each is one transaction, idempotent, and catches up by itself:
a sweep after downtime records every missed warning and breach at its true instant."""

from __future__ import annotations

import os
import socket

from timers.clock import now

from . import delivery, sla
from .clock_store import sync_clock
from .db import Database
from .models import Setting


def _heartbeat(session, job: str) -> None:
    key = f"heartbeat:{job}"
    value = {"at": now().isoformat(), "host": socket.gethostname(), "pid": os.getpid()}
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def sweep_clocks(db: Database) -> sla.SweepResult:
    def work(session):
        sync_clock(session)
        total = sla.SweepResult()
        while True:  # in batches, so a long outage is caught up in one run
            result = sla.sweep(session)
            total.warnings += result.warnings
            total.breaches += result.breaches
            if result.warnings + result.breaches == 0:
                break
        _heartbeat(session, "sweep")
        return total
    return db.transaction(work)


def deliver_alerts(db: Database) -> tuple[int, int]:
    def work(session):
        sync_clock(session)
        result = delivery.deliver_due(session)
        _heartbeat(session, "deliver")
        return result
    return db.transaction(work)


JOBS = {"sweep_clocks": sweep_clocks, "deliver_alerts": deliver_alerts}
