"""The faults found when the case flow was tried as a new user would (issue 10), each pinned by a test
that failed before its fix."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import datetime

from sqlalchemy import func, select

from tests.conftest import PERSON
from tests.webapp.test_pages import REQUIRED, Browser, intake_form, tokens
from tests.webapp.test_seed_processes import accept
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.casework import attachments
from workflows.definitions.processes import deploy
from workflows.models import Alert, Attachment, Case, WorkItem


def _supplement_case(app) -> tuple[Browser, str, str]:
    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form(action="supplement", received=REQUIRED[:-1],
                                                        missing=[REQUIRED[-1]], reason="请补交住所证明"))
    notice = clerk.get(r.headers["Location"]).get_data(as_text=True)
    return (clerk, re.search(r'id="case-no">([^<]+)<', notice).group(1),
            re.search(r'id="query-code">([^<]+)<', notice).group(1))


def test_uploaded_files_open_with_a_relative_upload_dir_and_two_uploads_in_one_second(
        app, deployed, tmp_path, monkeypatch, manual_clock):
    from workflows import db as db_module
    monkeypatch.setattr(db_module, "_STARTED_IN", tmp_path)  # the server was started in tmp_path
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONEWINDOW_UPLOAD_DIR", "relative/uploads")  # relative: stored absolute all the same
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    clerk, case_no, code = _supplement_case(app)
    applicant = Browser(app)
    applicant.post_form("/track", case_no=case_no, query_code=code)
    for content in (b"%PDF-1.4 first", b"%PDF-1.4 second"):  # the frozen clock: the same second
        page = applicant.get(f"/track/{case_no}").get_data(as_text=True)
        r = applicant.client.post(f"/track/{case_no}/supply", data={
            **tokens(page), "files": (io.BytesIO(content), "lease.pdf")}, follow_redirects=True)
        assert r.status_code == 200 and "已提交 1 个文件" in r.get_data(as_text=True)
    with deployed.read() as s:
        rows = s.scalars(select(Attachment).order_by(Attachment.id)).all()
        notices = s.scalar(select(func.count()).select_from(Alert).where(Alert.level == "supplied"))
    assert len(rows) == 2 and notices == 2
    monkeypatch.chdir("/")  # the server's working directory is not the one the file was stored from
    for row, content in zip(rows, (b"%PDF-1.4 first", b"%PDF-1.4 second"), strict=True):
        r = clerk.get(f"/attachments/{row.id}")
        assert r.status_code == 200 and r.data == content


def test_a_rolled_back_upload_leaves_no_file(deployed, tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_UPLOAD_DIR", str(tmp_path / "uploads"))
    from tests.conftest import CLERK, COMPANY
    from workflows.casework import cases

    case = deployed.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))

    def upload_then_fail(session):
        attachments.save(session, session.get(Case, case.id), "step", "a.pdf", io.BytesIO(b"%PDF-1.4 x"), "clerk")
        assert list((tmp_path / "uploads").iterdir())  # written …
        raise RuntimeError("the rest of the transaction failed")

    try:
        deployed.transaction(upload_then_fail)
    except RuntimeError:
        pass
    assert list((tmp_path / "uploads").iterdir()) == []  # … and gone with the rollback


def test_a_required_tick_box_must_be_ticked(api):
    case = api.start("property_registration", {"registration_kind": "general"}, **PERSON)
    accept(api, case["case_no"])
    tax = api.open_items(case["case_no"])["tax"]
    r = api.post(f"/work-items/{tax['id']}/complete", "tax", json={"data": {"tax_paid": False}})
    assert r.status_code == 400 and "tax_paid" in r.get_json()["message"]
    assert api.open_items(case["case_no"])["tax"]["state"] == "open"
    api.complete(tax, "tax", {"tax_paid": True})


def test_parallel_steps_keep_their_own_submissions(api, app):
    case = api.start("company_setup")
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "L-1", "opinion": "市场监管意见"})
    api.complete(items["seal"], "police", {"seal_no": "S-1", "opinion": "公安意见"})
    done = {i["step"]: i for i in api.get(f"/cases/{case['case_no']}").get_json()["done_items"]}
    assert done["registration"]["data"]["opinion"] == "市场监管意见"
    assert done["seal"]["data"]["opinion"] == "公安意见"
    html = Browser(app, "supervisor").get(f"/cases/{case['case_no']}").get_data(as_text=True)
    assert "市场监管意见" in html and "公安意见" in html


MANUAL = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="manual_steps" name="manual" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l" name="综合窗口">
      <bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>accept</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>plain</bpmn:flowNodeRef><bpmn:flowNodeRef>hand</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="accept" name="受理审查">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:task id="plain" name="归档"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:task>
    <bpmn:manualTask id="hand" name="现场核验">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:manualTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="accept" />
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="plain" />
    <bpmn:sequenceFlow id="f3" sourceRef="plain" targetRef="hand" />
    <bpmn:sequenceFlow id="f4" sourceRef="hand" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>'''.encode()


def test_manual_and_plain_tasks_run(api, deployed):
    deployed.transaction(lambda s: deploy(s, MANUAL, "manual.bpmn"))
    case = api.start("manual_steps")
    api.complete(api.open_items(case["case_no"])["accept"], "clerk", {})
    items = api.open_items(case["case_no"])
    assert list(items) == ["hand"]  # the plain task ran by itself; the manual one is a step of the window
    api.complete(items["hand"], "clerk", {})
    assert api.get(f"/cases/{case['case_no']}").get_json()["status"] == "completed"


def test_confirming_a_supplement_returns_the_case_to_the_clerks_decision(app, deployed, manual_clock):
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    clerk, case_no, _ = _supplement_case(app)
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 10, 10, tzinfo=SHANGHAI), frozen=True))
    r = clerk.post_form(f"/cases/{case_no}", f"/cases/{case_no}/confirm-supplement")
    assert r.status_code == 302 and "/items/" in r.headers["Location"]  # straight to the 受理 decision
    with deployed.read() as s:
        case = s.scalar(select(Case).where(Case.case_no == case_no))
        accept_item = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id, WorkItem.step == "accept"))
    assert case.status == "received" and accept_item.state == "open"  # not accepted behind the clerk's back
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 10, 11, tzinfo=SHANGHAI), frozen=True))
    r = clerk.post_form(f"/items/{accept_item.id}", decision="refuse", reason="材料仍不符合要求")
    assert r.status_code == 302
    with deployed.read() as s:
        case = s.scalar(select(Case).where(Case.case_no == case_no))
        assert (case.status, case.outcome) == ("refused", "refused")


def test_db_upgrade_alone_makes_deadlines_work(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    run = [sys.executable, "-m", "webapp.cli"]
    upgraded = subprocess.run([*run, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    due = subprocess.run([*run, "calendar", "due", "2026-02-13T15:00", "PT8H"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert due.returncode == 0, due.stderr
    assert due.stdout.strip() == "2026-02-14T15:00:00+08:00"  # a make-up Saturday


def test_an_admin_loads_a_new_year_from_a_file_and_corrects_its_days(app, deployed):
    """2027 is not in chinese-calendar: loading it from there says what to do; a JSON file loads it; its
    days can then be set, and deadlines reach into it."""
    import json

    from workflows.administration import calendar_store

    admin = Browser(app, "admin")
    r = admin.post_form("/admin/calendar", what="year", year="2027")
    assert r.status_code == 400 and "JSON" in r.get_data(as_text=True)
    schedule = {"holidays": {"2027-01-01": "元旦", "2027-02-08": "春节"}, "workdays": {"2027-02-07": "春节调休"}}
    page = admin.get("/admin/calendar").get_data(as_text=True)
    r = admin.client.post("/admin/calendar", data={**tokens(page), "what": "year", "year": "2027",
                                                   "file": (io.BytesIO(json.dumps(schedule).encode()), "2027.json")})
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    bad = admin.client.post("/admin/calendar", data={**tokens(page), "what": "year", "year": "2027",
                                                     "file": (io.BytesIO(b"{not json"), "2027.json")})
    assert bad.status_code == 400 and "JSON" in bad.get_data(as_text=True)
    r = admin.post_form("/admin/calendar", what="day", day="2027-01-04", kind="holiday", name="临时闭厅")
    assert r.status_code == 200
    with deployed.read() as s:
        days = {d.day.isoformat(): d.kind for d in calendar_store.year_days(s, 2027)}
        cal = calendar_store.working_calendar(s)
    assert days == {"2027-01-01": "holiday", "2027-01-04": "holiday", "2027-02-07": "workday",
                    "2027-02-08": "holiday"}
    from timers.durations import parse_duration
    due = cal.due(datetime(2026, 12, 31, 10, tzinfo=SHANGHAI), parse_duration("P1D"))
    assert due == datetime(2027, 1, 5, 18, tzinfo=SHANGHAI)  # 1 January and the closed 4th skipped


def test_office_hours_are_addressed_by_name_and_overlaps_are_refused(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'hours.db'}"}
    run = [sys.executable, "-m", "webapp.cli"]

    def cli(*args):
        return subprocess.run([*run, *args], env=env, capture_output=True, text=True, timeout=120)

    assert cli("db", "upgrade").returncode == 0
    assert cli("calendar", "hours", "default", "--period", "09:00-12:00", "--period", "13:00-18:00").returncode == 0
    other = cli("calendar", "hours", "winter", "--period", "09:00-17:00")
    assert other.returncode == 2 and "'default'" in other.stderr  # a second rule for every day: refused
    assert cli("calendar", "hours", "summer", "--period", "09:00-12:00", "--period", "14:00-18:00",
               "--from", "2026-06-01", "--to", "2026-09-30").returncode == 0
    overlap = cli("calendar", "hours", "july", "--period", "08:00-12:00", "--from", "2026-07-01",
                  "--to", "2026-07-31")
    assert overlap.returncode == 2 and "'summer'" in overlap.stderr and "overlaps" in overlap.stderr
    changed = cli("calendar", "hours", "default", "--period", "08:30-12:00", "--period", "13:00-17:30")
    assert changed.returncode == 0
    due = cli("calendar", "due", "2026-03-02T08:30", "PT1H")  # the changed default is in force
    assert due.stdout.strip() == "2026-03-02T09:30:00+08:00", due.stdout + due.stderr
