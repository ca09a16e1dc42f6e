"""SIGKILL the server in the middle of a burst of completions: after restart every case is consistent."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select

from tests.conftest import CLERK, COMPANY, DEMO_PASSWORD
from tests.webapp.live import call, free_port
from workflows.casework import cases
from workflows.models import WorkItem
from workflows.oversight.integrity import all_problems

pytestmark = pytest.mark.slow
DATA = {"registration": {"approval": "approve", "license_no": "L"}, "seal": {"seal_no": "S"},
        "invoice": {"taxpayer_no": "T"}}
USERS = {"registration": "samr", "seal": "police", "invoice": "tax"}


def _start_server(db_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_DEV_SERVER": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "webapp.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def _post(port: int, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    return call(port, "POST", path, body, token, timeout=10)


def test_sigkill_mid_burst_loses_no_acknowledged_completion(deployed, db_url):
    database = deployed
    for _ in range(12):
        case = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
        with database.read() as s:
            accept = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id))
        database.transaction(lambda s, a=accept.id: cases.complete(s, a, CLERK, {"decision": "accept"}))
    with database.read() as s:
        items = [(i.id, i.step) for i in s.scalars(select(WorkItem).where(WorkItem.state == "open",
                                                                         WorkItem.step != "deliver"))]
    assert len(items) == 36

    port = free_port()
    server = _start_server(db_url, port)
    try:
        tokens = {u: _post(port, "/auth/token", {"username": u, "password": DEMO_PASSWORD})[1]["token"]
                  for u in USERS.values()}
        acknowledged: list[int] = []
        lock = threading.Lock()
        queue = list(items)

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    item_id, step = queue.pop(0)
                try:
                    status, _ = _post(port, f"/work-items/{item_id}/complete", {"data": DATA[step]},
                                      tokens[USERS[step]])
                except (OSError, http.client.HTTPException):
                    return  # the server is gone (a reply cut off by the kill was never acknowledged)
                if status == 200:
                    with lock:
                        acknowledged.append(item_id)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        while True:
            with lock:
                if len(acknowledged) >= 10:
                    break
            time.sleep(0.005)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        for t in threads:
            t.join()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert 10 <= len(acknowledged) < 36, "the kill should land in the middle of the burst"

    server = _start_server(db_url, port)
    try:
        with database.read() as s:
            states = {i.id: i.state for i in s.scalars(select(WorkItem))}
            assert all(states[i] == "completed" for i in acknowledged)
            assert all_problems(s) == []
        # the hall carries on: the rest can be completed after the restart
        for item_id, step in items:
            if states[item_id] == "open":
                token = _post(port, "/auth/token", {"username": USERS[step], "password": DEMO_PASSWORD})[1]
                status, body = _post(port, f"/work-items/{item_id}/complete", {"data": DATA[step]},
                                     token["token"])
                assert status == 200, body
        with database.read() as s:
            assert {i.state for i in s.scalars(select(WorkItem).where(WorkItem.step != "deliver"))} == {
                "completed"}
            assert len(s.scalars(select(WorkItem).where(WorkItem.step == "deliver")).all()) == 12
            assert all_problems(s) == []
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
