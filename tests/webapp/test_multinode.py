"""Two web processes (gunicorn) and two schedulers on one PostgreSQL: a mixed load loses no update,
makes no alert twice, and a killed scheduler's work is done by the other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest
from sqlalchemy import func, select

from tests.conftest import COMPANY, DEMO_PASSWORD
from tests.webapp.live import call, free_port
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.models import Alert, SlaClock, WorkItem
from workflows.oversight.integrity import all_problems

pytestmark = pytest.mark.slow
DATA = {"accept": {"decision": "accept"}, "registration": {"approval": "approve", "license_no": "L"},
        "seal": {"seal_no": "S"}, "invoice": {"taxpayer_no": "T"}, "deliver": {"delivery_method": "window"}}
USERS = {"accept": "clerk", "registration": "samr", "seal": "police", "invoice": "tax", "deliver": "clerk"}


def _spawn(args, env, log):
    return subprocess.Popen([sys.executable, "-m", "webapp.cli", *args], env=env, stdout=log, stderr=log,
                            start_new_session=True)


def test_two_web_nodes_and_two_schedulers(deployed, db_url, manual_clock, tmp_path):
    if not db_url.startswith("postgresql"):
        pytest.skip("several nodes share PostgreSQL; SQLite is the single-node store")
    database = deployed
    database.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 9, tzinfo=SHANGHAI)))
    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_CLOCK": "manual", "ONEWINDOW_SWEEP_SECONDS": "1"}
    ports = [free_port(), free_port()]
    log = open(tmp_path / "nodes.log", "w")  # noqa: SIM115 - closed in finally
    procs = [_spawn(["serve", "--port", str(p), "--workers", "2", "--no-scheduler"], env, log) for p in ports]
    schedulers = [_spawn(["scheduler"], env, log) for _ in range(2)]
    try:
        for port in ports:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except urllib.error.HTTPError:
                    break  # answering (503 until a scheduler has run is fine)
                except OSError:
                    time.sleep(0.1)
        tokens: dict[str, str] = {}

        def login_all():  # tokens last 12 hours of the (manual) clock
            for u in set(USERS.values()):
                tokens[u] = call(ports[0], "POST", "/auth/token", {"username": u, "password": DEMO_PASSWORD})[1][
                    "token"]
        login_all()

        # mixed load: 12 cases started on alternating nodes; every step completed on the other node,
        # the three departments of a case at the same moment
        acknowledged, errors = [], []
        lock = threading.Lock()

        def complete(item, port):
            status, body = call(port, "POST", f"/work-items/{item['id']}/complete", {"data": DATA[item["step"]]},
                                 tokens[USERS[item["step"]]])
            with lock:
                (acknowledged if status == 200 else errors).append((item["id"], status, body))

        def run_case(n):
            port = ports[n % 2]
            status, case = call(port, "POST", "/cases", {"process": "company_setup", "applicant": COMPANY},
                                 tokens["clerk"])
            assert status == 201, case
            for _ in range(4):
                _, shown = call(ports[(n + 1) % 2], "GET", f"/cases/{case['case_no']}", token=tokens["clerk"])
                items = shown["open_items"]
                if not items:
                    return
                threads = [threading.Thread(target=complete, args=(item, ports[i % 2]))
                           for i, item in enumerate(items)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

        workers = [threading.Thread(target=run_case, args=(n,)) for n in range(12)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        with database.read() as s:
            states = {i.id: i.state for i in s.scalars(select(WorkItem))}
            assert all(states[i] == "completed" for i, _, _ in acknowledged)
            assert len(acknowledged) == 12 * 5
            assert all_problems(s) == []

        # clocks that fall due while both schedulers run: every alert exactly once
        for n in range(10):
            call(ports[n % 2], "POST", "/cases", {"process": "company_setup", "applicant": COMPANY},
                  tokens["clerk"])
        with database.read() as s:
            accepts = s.scalars(select(WorkItem).where(WorkItem.step == "accept", WorkItem.state == "open")).all()
        for item in accepts:
            assert call(ports[0], "POST", f"/work-items/{item.id}/complete", {"data": DATA["accept"]},
                         tokens["clerk"])[0] == 200
        database.transaction(lambda s: set_clock(s, datetime(2026, 3, 10, 18, tzinfo=SHANGHAI)))
        login_all()

        def alerts_made():
            with database.read() as s:
                return s.scalar(select(func.count()).select_from(Alert).where(Alert.level.in_(("warning", "breach"))))

        # 10 cases × (case clock + 3 steps + the 督办 step the seal's timer creates) × (warning + breach)
        expected = 10 * 5 * 2
        deadline = time.monotonic() + 60
        while alerts_made() < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert alerts_made() == expected

        # one scheduler dies; the other keeps sweeping
        os.killpg(schedulers[0].pid, signal.SIGKILL)
        schedulers[0].wait()
        for n in range(5):
            call(ports[n % 2], "POST", "/cases", {"process": "company_setup", "applicant": COMPANY},
                  tokens["clerk"])
        with database.read() as s:
            accepts = s.scalars(select(WorkItem).where(WorkItem.step == "accept", WorkItem.state == "open")).all()
        database.transaction(lambda s: set_clock(s, datetime(2026, 3, 11, 9, tzinfo=SHANGHAI)))
        login_all()
        for item in accepts:
            assert call(ports[1], "POST", f"/work-items/{item.id}/complete", {"data": DATA["accept"]},
                         tokens["clerk"])[0] == 200
        database.transaction(lambda s: set_clock(s, datetime(2026, 3, 12, 18, tzinfo=SHANGHAI)))
        expected += 5 * 5 * 2
        deadline = time.monotonic() + 60
        while alerts_made() < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        with database.read() as s:
            duplicates = s.execute(select(Alert.clock_id, Alert.level, func.count()).where(
                Alert.clock_id.is_not(None)).group_by(Alert.clock_id, Alert.level).having(func.count() > 1)).all()
            unswept = s.scalar(select(func.count()).select_from(SlaClock).where(
                SlaClock.state.in_(("running", "warned")), SlaClock.due_at <= datetime(2026, 3, 12, 18,
                                                                                        tzinfo=SHANGHAI)))
        assert (alerts_made(), duplicates, unswept) == (expected, [], 0)
    finally:
        log.close()
        for p in procs + schedulers:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
