"""The periodic jobs the scheduler runs. Each is one transaction, idempotent, and catches up by itself:
a sweep after downtime records every missed warning and breach at its true instant."""

from __future__ import annotations

import logging
import os
import socket

from timers.clock import now

from ..administration import settings
from ..administration.clock_store import sync_clock
from ..casework import cases, window
from ..db import Database
from ..errors import DomainError
from . import delivery, incidents, sla, tallies

log = logging.getLogger(__name__)


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


def _one_case(db: Database, job: str, case_id: int, case_no: str | None, work) -> bool | None:
    """One case's share of a job, in transactions of its own: a failure rolls back this case only,
    becomes an incident (admins alerted once, retried with back-off) and the job goes on."""
    try:
        return work()
    except cases.CaseChanged:
        return None  # a step was written meanwhile: the case is looked at again on the next round
    except Exception as exc:  # noqa: BLE001 - whatever one case does, the others go on
        element = None
        if isinstance(exc, DomainError):
            message = getattr(exc, "internal", None) or exc.message
        else:
            log.exception("%s failed on case %s", job, case_no or case_id)
            message = f"{exc.__class__.__name__}: {exc}"
        db.transaction(lambda session: incidents.record(session, job, case_id, case_no, message, element))
        return None


def fire_timers(db: Database) -> int:
    """Fire due BPMN timers case by case: the scripts run with no lock held, then each case is written
    in a short transaction of its own."""
    total = 0
    while True:
        with db.read() as session:
            sync_clock(session)
            due = cases.due_timer_cases(session)
        fired = 0
        for case_id, case_no in due:
            def work(case_id=case_id):
                with db.read() as session:
                    prepared = cases.prepare_timer(session, case_id)
                return prepared is not None and db.transaction(lambda s: cases.apply_timer(s, prepared))
            fired += bool(_one_case(db, cases.TIMER_JOB, case_id, case_no, work))
        total += fired
        if not fired:
            break
    db.transaction(lambda session: _heartbeat(session, "fire_timers"))
    return total


def expire_tolerated(db: Database) -> int:
    """容缺受理 cases whose materials never came by the deadline end, each in its own transaction."""
    with db.read() as session:
        sync_clock(session)
        due = window.tolerated_due(session)
    ended = 0
    for case_id, case_no in due:
        ended += bool(_one_case(db, "expire_tolerated", case_id, case_no,
                                lambda case_id=case_id: db.transaction(
                                    lambda s: window.expire_tolerated_case(s, case_id))))
    db.transaction(lambda session: _heartbeat(session, "expire_tolerated"))
    return ended


def deliver_alerts(db: Database) -> tuple[int, int]:
    """Alerts out by e-mail and webhook: nothing is sent while a transaction is open."""
    with db.read() as session:
        sync_clock(session)
    result = delivery.deliver_due(db)
    db.transaction(lambda session: _heartbeat(session, "deliver_alerts"))
    return result


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
    """Run one job; its heartbeat (written at its end) is the time of its last success."""
    return JOBS[name](db)
