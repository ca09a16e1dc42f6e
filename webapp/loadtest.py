"""Throughput through the HTTP API: a real gunicorn server on loopback and K concurrent clients, each
taking company-setup cases from intake to delivery as the window and the departments would."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from workflows.administration import users
from workflows.bench import COMPANY, STEP_DATA, _percentiles
from workflows.db import Database

# who completes which step: the window and the three departments of company setup
ROLES = {"window": ("clerk", "window"), "samr": ("reviewer", "samr"), "police": ("reviewer", "police"),
         "tax": ("reviewer", "tax"), "admin": ("admin", None)}


class Client:
    """One keep-alive connection, as a browser or an integrating system holds one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                self.conn.request(method, "/api/v1" + path, body=payload, headers=headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the server closed an idle keep-alive connection: open a new one
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _users(db: Database, run: str) -> dict[str, tuple[str, str]]:
    """Staff accounts for this run (new names each run, so nothing is reset): department → (name, password)."""
    password = secrets.token_urlsafe(12)
    accounts = {}
    for key, (role, department) in ROLES.items():
        name = f"bench-{run}-{key}"
        db.transaction(lambda s, n=name, r=role, d=department: users.add_user(s, n, r, password, d))
        accounts[key] = (name, password)
    return accounts


def _start_server(url: str, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 — the server's output lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "webapp.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--no-scheduler"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not answer within 60 s")


def _peak_rss_mb(pid: int) -> float:
    """The largest peak resident size among the server process and its workers."""
    peak, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            peak = max(peak, int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration):
            continue
    return round(peak, 1)


def run_http(url: str, n_cases: int, clients: int, web_workers: int, port: int, log_path: Path) -> dict:
    """Start a server, drive it with `clients` concurrent clients, stop it; steps are the POSTs that
    change a case (start and every completed step), lists are the GETs between them."""
    db = Database(url)
    accounts = _users(db, secrets.token_hex(3))
    db.dispose()
    server = _start_server(url, port, web_workers, log_path)
    try:
        tokens = {}
        bootstrap = Client(port)
        for key, (name, password) in accounts.items():
            status, body = bootstrap.call("POST", "/auth/token", "", {"username": name, "password": password})
            if status != 201:
                raise RuntimeError(f"token for {name}: {status} {body}")
            tokens[key] = body["token"]
        share = [n_cases // clients + (1 if i < n_cases % clients else 0) for i in range(clients)]
        steps: list[float] = []
        lists: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def drive(count: int) -> None:
            client, mine_steps, mine_lists = Client(port), [], []
            try:
                for _ in range(count):
                    t = time.perf_counter()
                    status, body = client.call("POST", "/cases", tokens["window"],
                                               {"process": "company_setup", "applicant": COMPANY, "data": {}})
                    mine_steps.append((time.perf_counter() - t) * 1000)
                    if status != 201:
                        raise RuntimeError(f"start: {status} {body}")
                    case_no = body["case_no"]
                    while True:
                        t = time.perf_counter()
                        status, body = client.call("GET", f"/work-items?case_no={case_no}&state=open",
                                                   tokens["admin"])
                        mine_lists.append((time.perf_counter() - t) * 1000)
                        if not body.get("items"):
                            break
                        for item in body["items"]:
                            t = time.perf_counter()
                            status, done = client.call("POST", f"/work-items/{item['id']}/complete",
                                                       tokens[item["department"]], {"data": STEP_DATA[item["step"]]})
                            mine_steps.append((time.perf_counter() - t) * 1000)
                            if status != 200:
                                raise RuntimeError(f"complete {item['step']}: {status} {done}")
            except Exception as exc:  # reported with the result: a load test that hides errors is no test
                with lock:
                    errors.append(str(exc)[:300])
            with lock:
                steps.extend(mine_steps)
                lists.extend(mine_lists)

        threads = [threading.Thread(target=drive, args=(n,)) for n in share if n]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        rss = _peak_rss_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    lists_p = _percentiles(lists)
    return {"workload": "http", "cases": n_cases, "clients": clients, "web_workers": web_workers,
            "steps": len(steps), "seconds": round(wall, 2), "cases_per_s": round(n_cases / wall, 1),
            "steps_per_s": round(len(steps) / wall, 1), **_percentiles(steps),
            "step_mean_ms": round(sum(steps) / len(steps), 3) if steps else None,
            "list_p50_ms": lists_p["p50_ms"], "list_p95_ms": lists_p["p95_ms"], "server_rss_mb": rss,
            "errors": errors}
