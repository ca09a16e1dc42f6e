"""`onewindow check`: the running cases and those changed lately by default, every case with --all,
read in batches."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select, update

from tests.workflows.test_statistics import History, at
from workflows.integrity import problems
from workflows.models import WorkItem


def test_check_scope_and_batches(deployed, db_url, manual_clock):
    h = History(deployed)
    finished = h.company_case(at(2, 9), at(2, 10), at(2, 11))
    h.move(at(20, 9))
    running = h.start("company_setup")
    h.work(running, "accept")

    # a finished case whose delivered step shows as open again (as a torn write would leave it)
    deployed.transaction(lambda s: s.execute(update(WorkItem).where(
        WorkItem.case_no == finished, WorkItem.step == "deliver").values(state="open")))
    with deployed.read() as s:
        since = at(19, 9)
        counted: list[int] = []
        assert list(problems(s, since=since, everything=False, checked=counted)) == [] and counted == [1]
        counted = []
        found = list(problems(s, batch=1, checked=counted))
        assert counted == [2] and len(found) == 1 and found[0].startswith(f"{finished}: ready tasks []")
        assert s.scalars(select(WorkItem.case_no).where(WorkItem.state == "open")).all()  # nothing changed

    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_CLOCK": "manual"}

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "webapp.cli", "check", *args], env=env, capture_output=True,
                             text=True, timeout=120)
        return out.returncode, out.stdout + out.stderr

    code, text = cli()
    assert code == 0 and "1 cases consistent (running cases and cases changed since 2026-03-18 09:00)" in text
    code, text = cli("--all")
    assert code == 2 and finished in text and "1 problem(s) found in 2 cases (all cases)" in text
    code, text = cli("--days", "30")
    assert code == 2 and "1 problem(s) found in 2 cases" in text
