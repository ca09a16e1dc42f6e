"""/healthz (database and scheduler heartbeat) and /metrics in the Prometheus text format.

Gauges come from the database (the same for every process); request latency is this process's own
histogram, as Prometheus expects from each scraped process.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import func, select, text

from timers.clock import now
from workflows.administration import settings
from workflows.models import Alert, Case, Setting, SlaClock
from workflows.oversight import incidents, tallies
from workflows.oversight.jobs import JOBS

bp = Blueprint("health", __name__)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INTERVAL_SECONDS = int(os.environ.get("ONEWINDOW_SWEEP_SECONDS", "30"))
STALE_AFTER_SECONDS = 3 * INTERVAL_SECONDS  # a job that has not succeeded for three intervals


class Latency:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, seconds: float) -> None:
        with self.lock:
            self.n += 1
            self.total += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.counts[i] += 1
                    break
            else:
                self.counts[-1] += 1


LATENCY = Latency()


def _heartbeats(session) -> dict[str, float | None]:
    ages: dict[str, float | None] = {}
    for job in JOBS:
        row = session.get(Setting, f"heartbeat:{job}")
        ages[job] = (now() - datetime.fromisoformat(row.value["at"])).total_seconds() if row else None
    return ages


@bp.route("/healthz")
def healthz():
    db = current_app.extensions["onewindow.db"]
    body: dict = {"database": "ok"}
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
            ages = _heartbeats(session)
            open_incidents = incidents.open_count(session)
    except Exception as exc:  # the database is down: say so, with a 503
        db.engine.dispose()
        return jsonify({"database": f"error: {exc.__class__.__name__}", "status": "database unreachable"}), 503
    try:  # reads work; can it still write? (read-only, disk full, locked past the wait)
        db.transaction(lambda session: settings.put(session, "healthz", {"at": now().isoformat()}), attempts=1)
    except Exception as exc:  # noqa: BLE001 - any failure to write is the answer
        db.engine.dispose()
        return jsonify({"database": f"failing writes: {str(getattr(exc, 'orig', exc))[:200]}",
                        "status": "database failing writes"}), 503
    # each job's heartbeat is written at the end of a run that succeeded
    jobs = {job: {"last_success_age_seconds": round(age, 1) if age is not None else None,
                  "ok": age is not None and age < STALE_AFTER_SECONDS} for job, age in ages.items()}
    stale = sorted(job for job, state in jobs.items() if not state["ok"])
    body["scheduler"] = {"sweep_age_seconds": ages.get("sweep_clocks"), "jobs": jobs,
                         "stale_after_seconds": STALE_AFTER_SECONDS}
    body["incidents"] = {"open": open_incidents}
    body["status"] = "ok" if not stale else "scheduler stale: " + ", ".join(stale)
    return jsonify(body), 200 if not stale else 503


@bp.route("/metrics")
def metrics():
    from webapp.security import metrics_allowed

    if not metrics_allowed():  # a token or an address on the allow list (default: this machine)
        return Response("forbidden\n", status=403, mimetype="text/plain")
    db = current_app.extensions["onewindow.db"]
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")

    with db.read() as session:
        gauge("onewindow_cases", "Cases by status.",
              [({"status": s}, n) for s, n in session.execute(select(Case.status, func.count()).group_by(Case.status))])
        gauge("onewindow_clocks", "SLA clocks by scope and state.",
              [({"scope": sc, "state": st}, n) for sc, st, n in session.execute(
                  select(SlaClock.scope, SlaClock.state, func.count()).group_by(SlaClock.scope, SlaClock.state))])
        gauge("onewindow_alerts", "Alerts by level and whether acknowledged.",
              [({"level": lv, "acknowledged": str(ack).lower()}, n) for lv, ack, n in session.execute(
                  select(Alert.level, Alert.acknowledged_at.is_not(None), func.count())
                  .group_by(Alert.level, Alert.acknowledged_at.is_not(None)))])
        gauge("onewindow_untallied_days", "Closed days whose statistics tallies are not built yet.",
              [({}, tallies.status(session).missing)])
        gauge("onewindow_scheduler_lag_seconds", "Seconds since each scheduler job last ran (-1: never).",
              [({"job": job}, round(age, 3) if age is not None else -1) for job, age in _heartbeats(session).items()])
    lines.append("# HELP onewindow_request_seconds Request latency of this process.")
    lines.append("# TYPE onewindow_request_seconds histogram")
    with LATENCY.lock:
        cumulative = 0
        for bound, count in zip(BUCKETS, LATENCY.counts, strict=False):
            cumulative += count
            lines.append(f'onewindow_request_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'onewindow_request_seconds_bucket{{le="+Inf"}} {LATENCY.n}')
        lines.append(f"onewindow_request_seconds_sum {LATENCY.total:.6f}")
        lines.append(f"onewindow_request_seconds_count {LATENCY.n}")
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def register(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("request_started", None)
        if started is not None and request.endpoint not in ("health.metrics", "static"):
            LATENCY.observe(time.perf_counter() - started)
        return response
