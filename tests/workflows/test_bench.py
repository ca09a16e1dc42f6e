"""The benchmark code runs on a tiny size in the normal suite, so it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_bench_supervision_tiny(database, db_url, tmp_path):
    out_json = tmp_path / "bench.json"
    env = {**os.environ, "DATABASE_URL": db_url}
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "supervision", "--open", "60",
                          "--completed", "30", "--runs", "2", "--json", str(out_json)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "board first page" in run.stdout and "month statistics" in run.stdout
    import json
    result = json.loads(out_json.read_text())
    assert result["written"]["cases"] == 90 and result["totals"]["cases"] == 91  # plus the sample case
    env = result["environment"]
    assert env["cpus"] >= 1 and env["SpiffWorkflow"].startswith("3.") and env["database"].split()[0] in (
        "sqlite", "postgresql")
    assert f"SpiffWorkflow {env['SpiffWorkflow']}" in run.stdout
    assert all(t["p50_ms"] > 0 for t in result["timings"])


def test_bench_timers_and_throughput_tiny(database, db_url):
    env = {**os.environ, "DATABASE_URL": db_url}
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "timers", "--clocks", "500", "--due", "0.2"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    fields = dict(part.split("=", 1) for part in run.stdout.splitlines()[-1].split())
    due = int(fields["falling_due"])
    assert due > 0 and int(fields["warnings"]) == due and int(fields["breaches"]) == due
    assert int(fields["alerts"]) == 2 * due
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "throughput", "--cases", "3", "--workers",
                          "1,2"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "floor, serializing" in run.stdout and "service layer, 2 worker(s)" in run.stdout
    assert "per-step overhead over the serializing floor" in run.stdout


def test_bench_scale_tiny(database, db_url):
    env = {**os.environ, "DATABASE_URL": db_url}
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "scale", "--open", "80", "--completed", "40",
                          "--runs", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in ("worklist", "case page", "SLA sweep, nothing due", "1,000 clocks due", "board first page",
                 "month statistics"):
        assert name in run.stdout, name


def test_bench_http_tiny(database, db_url, tmp_path):
    """A real gunicorn server and two concurrent API clients: every case reaches delivery, no error."""
    out_json = tmp_path / "http.json"
    env = {**os.environ, "DATABASE_URL": db_url}
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "http", "--cases", "4", "--clients", "2",
                          "--web-workers", "1", "--json", str(out_json)], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    import json
    (result,) = json.loads(out_json.read_text())["runs"]
    assert result["errors"] == [] and result["steps"] == 4 * 6  # start + five completed steps per case
    assert result["steps_per_s"] > 0 and result["server_rss_mb"] > 0
    from sqlalchemy import func, select

    from workflows.models import Case
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.status == "completed")) == 4


def test_bench_never_fills_the_demo_database(tmp_path):
    """Without DATABASE_URL the benchmarks use instance/bench.db, not the demo's instance/onewindow.db."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ONEWINDOW_INSTANCE")}
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "timers", "--clocks", "100"], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"benchmark database: sqlite:///{tmp_path.resolve()}/instance/bench.db" in run.stdout
    assert (tmp_path / "instance" / "bench.db").exists() and not (tmp_path / "instance" / "onewindow.db").exists()


def test_bench_returns_tiny(database, db_url):
    env = {**os.environ, "DATABASE_URL": db_url}
    run = subprocess.run([sys.executable, "-m", "webapp.cli", "bench", "returns", "--rounds", "3", "--samples", "1"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    fields = dict(part.split("=", 1) for part in run.stdout.splitlines()[-1].split(" ") if "=" in part)
    assert fields["rounds"] == "3" and float(fields["step_ratio"]) > 0 and float(fields["state_ratio"]) > 0
