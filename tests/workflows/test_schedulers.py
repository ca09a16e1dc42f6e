"""Two scheduler processes over 1,000 clocks falling due: every warning and breach once, none twice."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import CLERK, COMPANY
from timers.clock import now
from workflows.casework import cases
from workflows.models import Alert, SlaClock

pytestmark = pytest.mark.slow


def test_two_schedulers_produce_no_duplicate_alerts(deployed, db_url):
    database = deployed
    case = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    base = now() - timedelta(days=2)
    rows = [dict(case_id=case.id, case_no=case.case_no, scope="step", step=f"s{i}", name=f"step {i}",
                 department="police", budget="PT1H", budget_minutes=60, started_at=base,
                 warn_at=base + timedelta(minutes=i % 50), due_at=base + timedelta(hours=1, minutes=i % 50),
                 state="running", paused_minutes=0) for i in range(1000)]
    database.transaction(lambda s: s.execute(insert(SlaClock), rows))

    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_SWEEP_BATCH": "50"}
    procs = [subprocess.Popen([sys.executable, "-m", "webapp.cli", "scheduler", "--once"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs

    with database.read() as s:
        total = s.scalar(select(func.count()).select_from(Alert))
        distinct = s.scalar(select(func.count(func.distinct(Alert.dedupe_key))))
        per_clock = s.execute(select(Alert.clock_id, Alert.level, func.count()).group_by(
            Alert.clock_id, Alert.level).having(func.count() > 1)).all()
        unswept = s.scalar(select(func.count()).select_from(SlaClock).where(
            (SlaClock.warned_at.is_(None)) | (SlaClock.breached_at.is_(None))))
        wrong_time = s.scalar(select(func.count()).select_from(Alert).join(SlaClock, Alert.clock_id == SlaClock.id)
                              .where(Alert.level == "breach", Alert.at != SlaClock.due_at))
    assert (total, distinct, per_clock, unswept, wrong_time) == (2000, 2000, [], 0, 0)
