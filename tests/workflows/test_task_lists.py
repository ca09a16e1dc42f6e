"""Reform task lists as cases (issue 15, point 5): the shipped Mianyang list imports whole through the command,
a file with bad rows imports nothing (or, with --skip-bad, the rest, listed), a task goes to its lead unit and
its cooperating units, the office closes it or sends it round again, and the board counts overdue tasks per
lead unit."""

from __future__ import annotations

from datetime import datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from tests.webapp.test_time_api import cli
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.casework import cases, task_lists
from workflows.definitions.catalogue import BPMN_DIR
from workflows.models import Case, SlaClock, WorkItem
from workflows.oversight import board

SHIPPED = BPMN_DIR / "reform_tasks_mianyang.csv"
SUINING = BPMN_DIR / "reform_tasks_suining.csv"
HEADER = "序号,主要任务,牵头单位,配合单位,责任领导,完成时限\n"


def _count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Case).where(Case.matter_code == "GGRW"))


def test_the_shipped_lists_import_whole_once(deployed, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command does the same on PostgreSQL; its database path is tested elsewhere")
    done = cli(db_url, "import", "reform-tasks", str(SHIPPED))
    assert done.returncode == 0, done.stderr
    assert "imported 110 task(s)" in done.stdout and _count(deployed) == 110
    again = cli(db_url, "import", "reform-tasks", str(SHIPPED))
    assert "imported 0 task(s), 110 already there" in again.stdout and _count(deployed) == 110
    suining = cli(db_url, "import", "reform-tasks", str(SUINING))  # the whole Suining list: 269 targets
    assert "imported 269 task(s)" in suining.stdout and _count(deployed) == 379


def test_a_file_with_bad_rows_imports_nothing_unless_told(deployed, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command does the same on PostgreSQL; its database path is tested elsewhere")
    path = tmp_path / "tasks.csv"
    path.write_text(HEADER + "1,落实证明事项告知承诺制,市司法局,市政务服务监管局,张三,2030年6月底\n"
                    "2,某项任务,市天文台,,李四,2030年12月底\n"
                    "3,另一项任务,市发改委,,王五,明年\n", encoding="utf-8")
    refused = cli(db_url, "import", "reform-tasks", str(path))
    assert refused.returncode != 0
    assert "row 3: the lead unit '市天文台' is no department" in refused.stderr
    assert "row 4: the deadline '明年'" in refused.stderr and _count(deployed) == 0
    skipped = cli(db_url, "import", "reform-tasks", "--skip-bad", str(path))
    assert skipped.returncode == 0 and "imported 1 task(s), 2 bad row(s) skipped" in skipped.stdout
    assert _count(deployed) == 1
    missing = tmp_path / "no-header.csv"
    missing.write_text("a,b\n1,2\n", encoding="utf-8")
    assert "lacks the columns" in cli(db_url, "import", "reform-tasks", str(missing)).stderr


def test_deadlines_read_as_the_lists_write_them():
    assert task_lists.parse_deadline("2020年6月底") == datetime(2020, 6, 30).date()
    assert task_lists.parse_deadline("2020 年 12 月底") == datetime(2020, 12, 31).date()
    assert task_lists.parse_deadline("2020年3月底前") == datetime(2020, 3, 31).date()
    assert task_lists.parse_deadline("2021-02-28") == datetime(2021, 2, 28).date()
    assert task_lists.parse_deadline("长期") is None


def test_a_task_runs_its_rounds_and_the_board_counts_the_overdue(deployed, manual_clock, tmp_path):
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 9, 28, 10, tzinfo=SHANGHAI), frozen=True))
    book = Workbook()
    book.active.append(["序号", "主要任务", "牵头单位", "责任单位", "市级牵头领导", "完成进度时限"])
    book.active.append(["1", "压减企业开办时间", "市市场监管局", "市税务局、市公安局等市直有关部门", "颜 超",
                        "2026年10月底"])
    book.active.append(["2", "清理证明事项", "市司法局", "", "颜超", "2026年6月底"])  # already past
    path = tmp_path / "tasks.xlsx"
    book.save(path)
    result = task_lists.import_tasks(deployed, path)
    assert not result.errors and len(result.created) == 2
    with deployed.read() as s:
        first = s.scalar(select(Case).where(Case.case_no == result.created[0]))
        items = s.scalars(select(WorkItem).where(WorkItem.case_id == first.id).order_by(WorkItem.id)).all()
        clock = s.scalar(select(SlaClock).where(SlaClock.case_id == first.id, SlaClock.scope == "case"))
        second = s.scalar(select(Case).where(Case.case_no == result.created[1]))
        assert s.scalar(select(SlaClock).where(SlaClock.case_id == second.id, SlaClock.scope == "case")) is None
    assert sorted((i.step, i.department) for i in items) == [
        ("contribute", "police"), ("contribute", "tax"), ("report", "samr")]
    # "10月底" is Saturday 31 October 2026: due at close of business the next working day, Monday 2 November
    assert clock.due_at.astimezone(SHANGHAI) == datetime(2026, 11, 2, 18, tzinfo=SHANGHAI)
    data = {"report": {"progress": "已压减至 1 个工作日"}, "contribute": {"contribution": "已配合"}}
    for item in items:
        deployed.transaction(lambda s, i=item: cases.complete(s, i.id, cases.SYSTEM, data[i.step]))
    with deployed.read() as s:
        review = s.scalar(select(WorkItem).where(WorkItem.case_id == first.id, WorkItem.step == "review"))
    assert review.department == "supervision"
    deployed.transaction(lambda s: cases.complete(s, review.id, cases.SYSTEM, {"verdict": "continue"}))
    with deployed.read() as s:  # another round: the units report again
        again = s.scalars(select(WorkItem).where(WorkItem.case_id == first.id,
                                                 WorkItem.state.in_(cases.OPEN_STATES))).all()
        assert sorted(i.department for i in again) == ["police", "samr", "tax"]
        rows = {(r.unit, r.open, r.overdue) for r in board.deadlines(s)}
    assert rows == {("samr", 1, 0), ("justice", 1, 1)}
