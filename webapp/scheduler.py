"""APScheduler start-up: the periodic jobs inside `onewindow serve`, or alone as `onewindow scheduler`."""

from __future__ import annotations

import logging
import os

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from workflows.db import Database
from workflows.jobs import JOBS

log = logging.getLogger(__name__)
INTERVAL_SECONDS = int(os.environ.get("ONEWINDOW_SWEEP_SECONDS", "30"))


def run_once(db: Database) -> dict[str, object]:
    return {name: job(db) for name, job in JOBS.items()}


def _safe(job, db):
    def run():
        try:
            job(db)
        except Exception:  # a failed run is retried at the next interval; the scheduler keeps going
            log.exception("scheduler job %s failed", job.__name__)
    return run


def configure(scheduler, db: Database, interval: int = INTERVAL_SECONDS):
    for name, job in JOBS.items():
        # coalesce + one instance: after downtime a job runs once and catches up by itself
        scheduler.add_job(_safe(job, db), "interval", seconds=interval, id=name, coalesce=True, max_instances=1)
    return scheduler


def _catch_up(db: Database) -> None:
    # the interval trigger first fires one interval after start; catch up on the missed time now
    for job in JOBS.values():
        _safe(job, db)()


def start_background(db: Database) -> BackgroundScheduler:
    scheduler = configure(BackgroundScheduler(timezone="UTC"), db)
    scheduler.start()
    scheduler.add_job(_catch_up, args=[db], id="catch_up")
    return scheduler


def run_blocking(db: Database) -> None:
    _catch_up(db)
    configure(BlockingScheduler(timezone="UTC"), db).start()
