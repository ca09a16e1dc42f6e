"""Departments completing parallel branches of one case at the same moment: every completion lands."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.conftest import CLERK, COMPANY
from workflows.casework import cases
from workflows.models import AuditEvent, Case, WorkItem
from workflows.oversight.integrity import all_problems

REVIEWERS = {"registration": cases.Actor("samr", "reviewer", "samr"),
             "seal": cases.Actor("police", "reviewer", "police"),
             "invoice": cases.Actor("tax", "reviewer", "tax")}
DATA = {"registration": {"approval": "approve", "license_no": "L"}, "seal": {"seal_no": "S"},
        "invoice": {"taxpayer_no": "T"}}


def _accepted_case(database) -> int:
    case = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    with database.read() as s:
        accept = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id))
    database.transaction(lambda s: cases.complete(s, accept.id, CLERK, {"decision": "accept"}))
    return case.id


def _completer(path: str, database):
    """The API's path (evaluate with no lock, write with the revision check) or one transaction."""
    if path == "prepared":
        return lambda item_id, actor, data: cases.complete_step(database, item_id, actor, data)
    return lambda item_id, actor, data: database.transaction(lambda s: cases.complete(s, item_id, actor, data))


@pytest.mark.parametrize("path", ["prepared", "one transaction"])
def test_parallel_branches_completed_at_the_same_moment_all_land(deployed, path):
    database = deployed
    complete = _completer(path, database)
    case_ids = [_accepted_case(database) for _ in range(8)]
    with database.read() as s:
        items = s.scalars(select(WorkItem).where(WorkItem.case_id.in_(case_ids), WorkItem.state == "open")).all()
    assert len(items) == 3 * len(case_ids)
    by_case: dict[int, list[WorkItem]] = {}
    for item in items:
        by_case.setdefault(item.case_id, []).append(item)

    errors: list[BaseException] = []
    for case_items in by_case.values():
        barrier = threading.Barrier(len(case_items))

        def work(item=None, barrier=barrier):
            try:
                barrier.wait()
                complete(item.id, REVIEWERS[item.step], DATA[item.step])
            except BaseException as exc:  # collected and reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, kwargs={"item": i}) for i in case_items]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []

    with database.read() as s:
        for case_id in case_ids:
            case = s.get(Case, case_id)
            steps = {i.step: i.state for i in s.scalars(select(WorkItem).where(WorkItem.case_id == case_id))}
            assert steps == {"accept": "completed", "registration": "completed", "seal": "completed",
                             "invoice": "completed", "deliver": "open"}, steps
            assert case.status == "in_progress"
            assert case.data == {"decision": "accept", "approval": "approve", "license_no": "L", "seal_no": "S",
                                 "taxpayer_no": "T"}
            assert s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.case_id == case_id, AuditEvent.action == "work_item.completed")) == 4
        assert all_problems(s) == []


@pytest.mark.parametrize("path", ["prepared", "one transaction"])
def test_the_same_item_completed_twice_at_once_lands_once(deployed, path):
    database = deployed
    complete = _completer(path, database)
    case_id = _accepted_case(database)
    with database.read() as s:
        seal = s.scalar(select(WorkItem).where(WorkItem.case_id == case_id, WorkItem.step == "seal"))
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        try:
            complete(seal.id, REVIEWERS["seal"], {"seal_no": "S"})
            outcomes.append("ok")
        except cases.Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"]
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.work_item_id == seal.id, AuditEvent.action == "work_item.completed")) == 1
        assert all_problems(s) == []


def test_sqlite_writers_queue_on_the_lock_file(tmp_path):
    """SQLite writers wait on the flock'd file beside the database (woken at once when it is free), and
    many threads writing at once lose nothing."""
    import fcntl
    import os
    import threading

    from workflows.administration import settings
    from workflows.db import Database
    from workflows.models import Setting
    from workflows.schema import upgrade

    db = Database(f"sqlite:///{tmp_path / 'q.db'}")
    upgrade(db)
    db.transaction(lambda s: settings.put(s, "n", {"v": 0}))
    fd = os.open(tmp_path / "q.db-writers", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is writing
    done = threading.Event()
    writer = threading.Thread(target=lambda: (db.transaction(lambda s: settings.put(s, "n", {"v": 1})), done.set()))
    writer.start()
    assert not done.wait(0.5), "the writer went ahead while the queue was held"
    fcntl.flock(fd, fcntl.LOCK_UN)
    assert done.wait(10)
    writer.join()
    os.close(fd)

    def bump(s):
        row = s.get(Setting, "n")
        settings.put(s, "n", {"v": row.value["v"] + 1})
    threads = [threading.Thread(target=lambda: [db.transaction(bump) for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as s:
        assert s.get(Setting, "n").value["v"] == 1 + 100
    db.dispose()


def test_a_return_and_a_take_back_at_the_same_moment_one_wins(deployed):
    """The window takes its acceptance back while 市场监管 returns its step to the window: one lands, the
    other is refused (409), and the case is whole either way."""
    from workflows.casework import operations
    from workflows.errors import Conflict, Forbidden

    database = deployed
    for _ in range(3):
        case_id = _accepted_case(database)
        with database.read() as s:
            accept = s.scalar(select(WorkItem).where(WorkItem.case_id == case_id, WorkItem.step == "accept"))
            registration = s.scalar(select(WorkItem).where(WorkItem.case_id == case_id,
                                                           WorkItem.step == "registration"))
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def act(name, call, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                call()
                outcomes[name] = "ok"
            except (Conflict, Forbidden) as exc:
                outcomes[name] = f"refused: {exc.message}"

        threads = [
            threading.Thread(target=act, args=("withdraw",
                                               lambda a=accept: operations.withdraw(database, a.id, CLERK))),
            threading.Thread(target=act, args=("return", lambda r=registration: operations.return_to(
                database, r.id, REVIEWERS["registration"], "window", "经营范围不清")))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(v == "ok" for v in outcomes.values()) == [False, True], outcomes
        with database.read() as s:
            open_steps = sorted(i.step for i in s.scalars(select(WorkItem).where(
                WorkItem.case_id == case_id, WorkItem.state.in_(("open", "claimed")))))
            assert open_steps == ["accept"]  # either way the window has the case again, once
            assert all_problems(s) == []
