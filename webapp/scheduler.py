"""The scheduler process: the periodic jobs, alone as `onewindow scheduler`, or as a child process that
`onewindow serve` and `demo` start and stop.

It is never threads inside the web server: a process that forks (the gunicorn master) must hold no
thread, connection or lock at the fork, or the child inherits them in whatever state they were.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from workflows.db import Database
from workflows.oversight.jobs import JOBS, run_job

log = logging.getLogger(__name__)
INTERVAL_SECONDS = int(os.environ.get("ONEWINDOW_SWEEP_SECONDS", "30"))
STOP_GRACE_SECONDS = 2.0
STOPPING = threading.Event()  # set when the process is told to stop: a job cut short then is no fault


def run_once(db: Database) -> dict[str, object]:
    return {name: run_job(db, name) for name in JOBS}


def _safe(name: str, db: Database):
    def run():
        if STOPPING.is_set():
            return
        try:
            run_job(db, name)
        except Exception:  # a failed run is retried at the next interval; the scheduler keeps going
            if STOPPING.is_set():
                log.info("scheduler job %s cut short by the stop; it runs again at the next start", name)
            else:
                log.exception("scheduler job %s failed", name)
    return run


def configure(scheduler, db: Database, interval: int = INTERVAL_SECONDS):
    for name in JOBS:
        # coalesce + one instance: after downtime a job runs once and catches up by itself
        scheduler.add_job(_safe(name, db), "interval", seconds=interval, id=name, coalesce=True, max_instances=1)
    return scheduler


def _catch_up(db: Database) -> None:
    # the interval trigger first fires one interval after start; catch up on the missed time now
    for name in JOBS:
        if STOPPING.is_set():
            return
        _safe(name, db)()


def run_blocking(db: Database, interval: int = INTERVAL_SECONDS, parent_pid: int | None = None) -> None:
    """Run until SIGTERM / SIGINT (or, as a child of `serve`, until the parent is gone).

    A job in the middle of its transaction when the stop comes is abandoned after a short grace: the
    database rolls the transaction back and the next run does the work again."""
    stop = threading.Event()
    # as a child of `serve`, Ctrl-C at the terminal reaches the whole group: the parent stops us
    for signum in (signal.SIGTERM,) if parent_pid else (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler = configure(BackgroundScheduler(timezone="UTC", executors={"default": ThreadPoolExecutor(4)}),
                          db, interval)
    scheduler.start()
    # a thread of its own, not a one-off scheduler job: APScheduler 3 raises JobLookupError from its own
    # thread when it is shut down while removing a finished one-off job (seen on a quick Ctrl-C)
    threading.Thread(target=_catch_up, args=(db,), name="catch-up", daemon=True).start()
    while not stop.wait(0.5):
        if parent_pid and os.getppid() != parent_pid:
            break  # the server that started us is gone (even killed): do not run on as an orphan
    STOPPING.set()
    finished = threading.Event()
    # running jobs get a short grace to commit; a transaction still open then is rolled back by the database
    threading.Thread(target=lambda: (scheduler.shutdown(wait=True), finished.set()), daemon=True).start()
    finished.wait(STOP_GRACE_SECONDS)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn_child() -> subprocess.Popen:
    """`onewindow scheduler` as a child of this process, with the same environment and directory."""
    return subprocess.Popen([sys.executable, "-m", "webapp.cli", "scheduler", "--parent", str(os.getpid())],
                            preexec_fn=_ignore_interrupt)  # noqa: PLW1509 - no threads run here yet


def _ignore_interrupt() -> None:
    # Ctrl-C goes to the terminal's whole process group; the server stops its scheduler itself (an
    # interrupt in the middle of start-up would print a traceback and nothing else)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_child(child: subprocess.Popen | None, timeout: float = 3.0) -> None:
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
