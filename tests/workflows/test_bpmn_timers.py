"""BPMN timers count working time on the project's clock and fire through the scheduler's job."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from tests.conftest import CLERK, COMPANY
from timers.clock import SHANGHAI, to_local
from workflows.administration.clock_store import set_clock
from workflows.casework import cases
from workflows.definitions.processes import deploy
from workflows.models import Alert, Case, WorkItem
from workflows.oversight import jobs

TIMERS = (Path(__file__).parent.parent / "data" / "timers.bpmn").read_bytes()
SUPERVISOR = cases.Actor("supervisor", "supervisor", "supervision")
POLICE = cases.Actor("police", "reviewer", "police")


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def move(database, instant):
    database.transaction(lambda s: set_clock(s, instant, frozen=True))


def open_items(database, case_id):
    with database.read() as s:
        return {i.step: i for i in s.scalars(select(WorkItem).where(
            WorkItem.case_id == case_id, WorkItem.state.in_(("open", "claimed"))))}


def get_case(database, case_id) -> Case:
    with database.read() as s:
        return s.get(Case, case_id)


def start_timer_case(database):
    database.transaction(lambda s: deploy(s, TIMERS, "timers.bpmn"))
    return database.transaction(lambda s: cases.start_case(s, "timer_test", COMPANY, {}, CLERK))


def test_intermediate_and_interrupting_boundary_timers_in_working_time(deployed, manual_clock):
    database = deployed
    move(database, at(2026, 9, 30, 17))  # the day before National Day
    case = start_timer_case(database)
    database.transaction(lambda s: cases.complete(s, open_items(database, case.id)["accept"].id, CLERK, {}))
    waiting = get_case(database, case.id)
    # "P1D" of working time: close of business on Oct 8, the first working day after the holiday
    assert to_local(waiting.next_timer_at) == at(2026, 10, 8, 18)
    assert open_items(database, case.id) == {}

    move(database, at(2026, 10, 8, 17, 59))
    assert jobs.fire_timers(database) == 0
    move(database, at(2026, 10, 8, 18, 0))
    assert jobs.fire_timers(database) == 1
    items = open_items(database, case.id)
    assert list(items) == ["answer"] and to_local(items["answer"].created_at) == at(2026, 10, 8, 18)
    # the boundary timer of the answer step: 2 working hours from 18:00 → Oct 9 11:00
    assert to_local(get_case(database, case.id).next_timer_at) == at(2026, 10, 9, 11)

    move(database, at(2026, 10, 9, 11, 30))
    assert jobs.fire_timers(database) == 1
    assert jobs.fire_timers(database) == 0
    done = get_case(database, case.id)
    assert (done.status, done.outcome, done.next_timer_at) == ("completed", "rejected", None)
    with database.read() as s:
        answer = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id, WorkItem.step == "answer"))
        assert answer.state == "cancelled"


def test_a_pause_moves_waiting_timers_out(deployed, manual_clock):
    database = deployed
    move(database, at(2026, 3, 9, 9))
    case = start_timer_case(database)
    database.transaction(lambda s: cases.complete(s, open_items(database, case.id)["accept"].id, CLERK, {}))
    assert to_local(get_case(database, case.id).next_timer_at) == at(2026, 3, 10, 18)
    move(database, at(2026, 3, 9, 10))
    database.transaction(lambda s: cases.pause(s, case.case_no, "special", "专家评审", CLERK))
    move(database, at(2026, 3, 11, 10))  # paused for two working days and an hour... held while paused
    assert jobs.fire_timers(database) == 0
    database.transaction(lambda s: cases.resume(s, case.case_no, CLERK))
    # 16 working hours (Mar 9 10:00 → Mar 11 10:00) later than before: Mar 12 18:00
    assert to_local(get_case(database, case.id).next_timer_at) == at(2026, 3, 12, 18)


def test_the_seal_steps_timer_escalates_to_the_supervisors(deployed, manual_clock, api):
    database = deployed
    move(database, at(2026, 2, 13, 15))
    case = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    database.transaction(lambda s: cases.complete(s, open_items(database, case.id)["accept"].id, CLERK,
                                                  {"decision": "accept"}))
    assert to_local(get_case(database, case.id).next_timer_at) == at(2026, 2, 13, 18)
    move(database, at(2026, 2, 13, 18))
    assert jobs.fire_timers(database) == 1
    items = open_items(database, case.id)
    assert sorted(items) == ["escalate_seal", "invoice", "registration", "seal"], "non-interrupting"
    escalation = items["escalate_seal"]
    assert (escalation.role, escalation.department) == ("supervisor", "supervision")
    with database.read() as s:
        alert = s.scalar(select(Alert).where(Alert.level == "escalation"))
        assert alert.case_no == case.case_no and "role:supervisor" in alert.concerned
    # the supervisor sees it in the inbox and works it; the case still waits for the seal
    inbox = api.get("/alerts?level=escalation", "supervisor").get_json()["alerts"]
    assert [a["step"] for a in inbox] == ["escalate_seal"]
    r = api.post(f"/work-items/{escalation.id}/complete", "supervisor", json={"data": {"action": "已电话督办公安"}})
    assert r.status_code == 200, r.get_json()
    assert api.post(f"/work-items/{escalation.id}/complete", "police", json={"data": {}}).status_code == 403
    assert sorted(open_items(database, case.id)) == ["invoice", "registration", "seal"]
