"""延期: a case's time limit extended by exactly N working days, across a holiday (issue 12)."""

from __future__ import annotations

from datetime import datetime

from tests.webapp.test_seed_processes import accept
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock


def _case_clock(api, case_no):
    return next(c for c in api.get(f"/cases/{case_no}").get_json()["clocks"] if c["scope"] == "case")


def test_an_extension_moves_the_case_limit_by_working_days_across_national_day(api, deployed, manual_clock):
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 9, 29, 10, tzinfo=SHANGHAI), frozen=True))
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    assert _case_clock(api, case_no)["due_at"].startswith("2026-09-30T10:00")  # PT8H from Tue 10:00
    r = api.post(f"/cases/{case_no}/extensions", "housing", json={"working_days": 1, "reason": "需现场核查"})
    assert r.status_code == 403  # a department not working the case
    r = api.post(f"/cases/{case_no}/extensions", "samr", json={"working_days": 11, "reason": "x"})
    assert r.status_code == 400 and "10" in r.get_json()["message"]  # the matter's cap
    r = api.post(f"/cases/{case_no}/extensions", "samr", json={"working_days": 1, "reason": "需征求相关部门意见"})
    assert r.status_code == 201, r.get_json()
    ext = r.get_json()
    assert api.post(f"/cases/{case_no}/extensions", "samr", json={"working_days": 1, "reason": "y"}).status_code \
        == 409  # one waiting for a decision at a time
    assert api.post(f"/extensions/{ext['id']}/approve", "samr", json={}).status_code == 403
    r = api.post(f"/extensions/{ext['id']}/approve", "supervisor", json={"note": "同意"})
    assert r.status_code == 200, r.get_json()
    decided = r.get_json()
    assert decided["state"] == "approved"
    assert decided["old_due_at"].startswith("2026-09-30T10:00")
    assert decided["new_due_at"].startswith("2026-10-08T10:00")  # one working day on: past the whole holiday
    assert _case_clock(api, case_no)["due_at"].startswith("2026-10-08T10:00")
    assert api.post(f"/extensions/{ext['id']}/refuse", "supervisor", json={}).status_code == 409
    history = [e["action"] for e in api.get(f"/cases/{case_no}").get_json()["history"]]
    assert "extension.requested" in history and "extension.approved" in history


def test_a_refused_extension_moves_nothing(api, deployed, manual_clock):
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    before = _case_clock(api, case_no)["due_at"]
    ext = api.post(f"/cases/{case_no}/extensions", "clerk", json={"working_days": 2, "reason": "z"}).get_json()
    r = api.post(f"/extensions/{ext['id']}/refuse", "supervisor", json={"note": "理由不充分"})
    assert r.status_code == 200 and r.get_json()["state"] == "refused"
    assert _case_clock(api, case_no)["due_at"] == before


def test_day_limits_move_to_close_of_business(api, deployed, manual_clock):
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    case = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})
    accept(api, case["case_no"])
    clock = _case_clock(api, case["case_no"])
    ext = api.post(f"/cases/{case['case_no']}/extensions", "ndrc",
                   json={"working_days": 3, "reason": "专家评审", "move_steps": True}).get_json()
    decided = api.post(f"/extensions/{ext['id']}/approve", "supervisor", json={}).get_json()
    from timers.calendar import from_chinese_calendar
    cal = from_chinese_calendar([2026])
    old = datetime.fromisoformat(clock["due_at"])
    assert datetime.fromisoformat(decided["new_due_at"]) == cal.add_days(old, 3)
    steps = [c for c in api.get(f"/cases/{case['case_no']}").get_json()["clocks"] if c["scope"] == "step"]
    assert steps and all(c["extended_days"] == 3 for c in steps)


def test_the_pages_ask_decide_print_and_tell_the_applicant(app, deployed, manual_clock):
    import re

    from tests.webapp.test_pages import Browser, accept_case

    deployed.transaction(lambda s: set_clock(s, datetime(2026, 9, 29, 10, tzinfo=SHANGHAI), frozen=True))
    case_no, code = accept_case(app)
    samr = Browser(app, "samr")
    r = samr.post_form(f"/cases/{case_no}", f"/cases/{case_no}/extensions", working_days="1", reason="需实地核查")
    assert r.status_code == 302
    supervisor = Browser(app, "supervisor")
    page = supervisor.get(f"/cases/{case_no}").get_data(as_text=True)
    assert "待审批" in page
    extension_id = re.search(r"/extensions/(\d+)/approve", page).group(1)
    assert supervisor.post_form(f"/cases/{case_no}", f"/extensions/{extension_id}/approve").status_code == 302
    notice = supervisor.get(f"/cases/{case_no}/extensions/{extension_id}/notice").get_data(as_text=True)
    assert "第四十二条" in notice and "2026年10月08日 10:00" in notice and "需实地核查" in notice
    applicant = Browser(app)
    applicant.post_form("/track", case_no=case_no, query_code=code)
    assert "办理期限已依法延长 1 个工作日" in applicant.get(f"/track/{case_no}").get_data(as_text=True)


def test_statistics_count_extended_cases(api, deployed, manual_clock):
    from datetime import date

    from workflows.oversight import statistics

    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    with deployed.read() as s:
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31)).extended == 0
    ext = api.post(f"/cases/{case_no}/extensions", "clerk", json={"working_days": 1, "reason": "z"}).get_json()
    api.post(f"/extensions/{ext['id']}/approve", "supervisor", json={})
    with deployed.read() as s:
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31)).extended == 1
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31), process="construction_permit").extended == 0


def test_a_formal_supervision_with_its_own_clock_closed_by_the_reply(api, app, deployed, manual_clock):
    from tests.webapp.test_pages import Browser
    from workflows.oversight import jobs

    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    seal = api.open_items(case_no)["seal"]
    body = {"item_id": seal["id"], "reply_within": "PT2H", "message": "印章刻制进度滞后，请说明原因"}
    assert api.post(f"/cases/{case_no}/supervisions", "clerk", json=body).status_code == 403
    assert api.post(f"/cases/{case_no}/supervisions", "supervisor",
                    json={**body, "reply_within": "soon"}).status_code == 400
    r = api.post(f"/cases/{case_no}/supervisions", "supervisor", json=body)
    assert r.status_code == 201, r.get_json()
    opened = r.get_json()
    assert opened["department"] == "police" and opened["state"] == "open"
    clock = next(c for c in api.get(f"/cases/{case_no}").get_json()["clocks"] if c["scope"] == "oversight")
    assert clock["due_at"].startswith("2026-03-09T12:00")  # two working hours
    alerts = api.get(f"/alerts?case_no={case_no}", as_user="police").get_json()["alerts"]
    assert any("印章刻制进度滞后" in a["message"] for a in alerts)
    # unanswered past its limit: breached like any other clock
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 13, 30, tzinfo=SHANGHAI), frozen=True))
    jobs.sweep_clocks(deployed)
    assert any(a["level"] == "breach" and "督办" in a["message"]
               for a in api.get(f"/alerts?case_no={case_no}").get_json()["alerts"])
    assert api.post(f"/supervisions/{opened['id']}/reply", "tax", json={"reply": "x"}).status_code == 403
    police = Browser(app, "police")
    page = police.get(f"/cases/{case_no}").get_data(as_text=True)
    assert "待答复" in page
    r = police.post_form(f"/cases/{case_no}", f"/supervisions/{opened['id']}/reply", reply="设备故障，已于今日修复")
    assert r.status_code == 302
    clock = next(c for c in api.get(f"/cases/{case_no}").get_json()["clocks"] if c["scope"] == "oversight")
    assert clock["state"] in ("met", "met_late")
    assert api.post(f"/supervisions/{opened['id']}/reply", "police", json={"reply": "again"}).status_code == 409
