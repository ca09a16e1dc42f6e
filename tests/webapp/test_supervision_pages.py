"""Supervisor and admin pages, health and metrics, with Flask's test client."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from html import unescape as html_unescape
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.webapp.test_pages import Browser, accept_case, tokens
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.oversight import jobs

BPMN = Path(__file__).resolve().parents[2] / "bpmn"


def move(db, instant):
    db.transaction(lambda s: set_clock(s, instant, frozen=True))


@pytest.mark.parametrize("who, allowed", [
    ("clerk", {"/alerts"}), ("samr", {"/alerts"}), ("supervisor", {"/alerts", "/board", "/stats", "/stats.csv"}),
    ("admin", {"/alerts", "/board", "/stats", "/stats.csv", "/admin/processes", "/admin/calendar", "/admin/users"}),
])
def test_supervision_page_matrix(app, who, allowed):
    browser = Browser(app, who)
    for path in ("/alerts", "/board", "/stats", "/stats.csv", "/admin/processes", "/admin/calendar", "/admin/users"):
        assert browser.get(path).status_code == (200 if path in allowed else 403), (who, path)


def test_board_counts_filters_and_order(app, deployed, manual_clock):
    move(deployed, datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    first, _ = accept_case(app)
    move(deployed, datetime(2026, 3, 9, 11, tzinfo=SHANGHAI))
    second, _ = accept_case(app)
    move(deployed, datetime(2026, 3, 9, 11, 45, tzinfo=SHANGHAI))
    jobs.sweep_clocks(deployed)
    board = Browser(app, "supervisor")
    html = board.get("/board").get_data(as_text=True)
    counts = dict(re.findall(r'class="count (\w+)"[^>]*>[^<]*<strong>(\d+)</strong>', html))
    # first case: its invoice step (PT1H30M, due 10:30) is breached, registration and seal (due 12:00) warned;
    # second case: its invoice step (due 13:30 over lunch) warned at 11:30, one working hour before
    assert counts["breached"] == "1" and counts["warned"] == "3"
    rows = re.findall(r'<tr class="(\w+)"><td>', html)
    assert rows[0] == "red", "the most urgent first"
    police = board.get("/board?department=police").get_data(as_text=True)
    assert first in police and "发票" not in police
    only_second = board.get("/board?state=running&scope=case").get_data(as_text=True)
    assert second in only_second and "办件 企业开办" in only_second
    assert board.get("/board?state=bogus").status_code == 400


def test_inbox_lists_and_acknowledges(app, deployed, manual_clock):
    move(deployed, datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    case_no, _ = accept_case(app)
    move(deployed, datetime(2026, 3, 9, 10, 31, tzinfo=SHANGHAI))
    jobs.sweep_clocks(deployed)
    inbox = Browser(app, "supervisor")
    fragment = inbox.get("/alerts/list").get_data(as_text=True)
    alert_ids = re.findall(r'data-alert="(\d+)"', fragment)
    assert len(alert_ids) >= 2 and case_no in fragment
    tax = Browser(app, "tax")
    assert "发票" in tax.get("/alerts/list").get_data(as_text=True)
    r = inbox.post_form("/alerts", f"/alerts/{alert_ids[0]}/ack", comment="已电话督促")
    assert r.status_code == 302
    everything = inbox.get("/alerts/list?show=all").get_data(as_text=True)
    assert "督查员" in everything and "已电话督促" in everything
    assert alert_ids[0] not in re.findall(r'data-alert="(\d+)"', inbox.get("/alerts/list").get_data(as_text=True))


def test_stats_exports(app, deployed, manual_clock):
    move(deployed, datetime(2026, 3, 9, 9, tzinfo=SHANGHAI))
    accept_case(app)
    supervisor = Browser(app, "supervisor")
    page = supervisor.get("/stats?from=2026-03-01&to=2026-03-31")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "企业开办" in html and "<svg" in html
    for chart in re.findall(r'(?s)<svg class="chart".*?</svg>', html):  # a 13 px Chinese glyph is 13 px wide
        labels = re.findall(r'<text x="0"[^>]*font-size="13">([^<]+)</text>', chart)
        bar_x = float(re.search(r'<rect x="([\d.]+)"', chart).group(1))
        assert labels and all(13 * len(html_unescape(label)) < bar_x for label in labels), (labels, bar_x)
    rows = list(csv.reader(io.StringIO(supervisor.get("/stats.csv?from=2026-03-01&to=2026-03-31")
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    company = next(r for r in rows if r[:2] == ["事项", "QYKB"])
    assert company[3:5] == ["1", "1"]  # received, accepted
    assert "平均用时（工作日）" in rows[0] and not any("_" in h for h in rows[0])  # words and units, no codes
    book = load_workbook(io.BytesIO(supervisor.get("/stats.xlsx?from=2026-03-01&to=2026-03-31").data))
    assert [c.value for c in book.active[1]][:4] == ["类别", "编码", "名称", "收件"]
    english = load_workbook(io.BytesIO(supervisor.get("/stats.xlsx?from=2026-03-01&to=2026-03-31&lang=en").data))
    assert [c.value for c in english.active[1]][:4] == ["Section", "Code", "Name", "Intake"]
    assert supervisor.get("/stats?from=2026-03-31&to=2026-03-01").status_code == 400
    assert supervisor.get("/stats?from=yesterday").status_code == 400


def test_admin_processes_upload(app, deployed):
    admin = Browser(app, "admin")
    page = admin.get("/admin/processes").get_data(as_text=True)
    bad = admin.client.post("/admin/processes", data={**tokens(page), "file": (io.BytesIO(
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'), "evil.bpmn")}, content_type="multipart/form-data")
    assert bad.status_code == 400 and "DOCTYPE" in bad.get_data(as_text=True)
    same = admin.client.post("/admin/processes", data={**tokens(page), "file": (
        io.BytesIO((BPMN / "company_setup.bpmn").read_bytes()), "company_setup.bpmn")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "内容未变" in same.get_data(as_text=True)
    changed = (BPMN / "company_setup.bpmn").read_bytes().replace("印章刻制".encode(), "公章刻制".encode())
    new = admin.client.post("/admin/processes", data={**tokens(page), "file": (io.BytesIO(changed), "x.bpmn")},
                            content_type="multipart/form-data", follow_redirects=True)
    html = new.get_data(as_text=True)
    assert "「企业开办“一件事”」第 2 版" in html
    version_links = re.findall(r'/admin/processes/(\d+)"', html)
    assert admin.get(f"/admin/processes/{version_links[0]}").status_code == 200


def test_admin_calendar_change_moves_running_clocks(app, deployed, manual_clock):
    move(deployed, datetime(2026, 3, 6, 17, tzinfo=SHANGHAI))  # a Friday
    case_no, _ = accept_case(app)
    admin = Browser(app, "admin")
    r = admin.post_form("/admin/calendar", what="day", day="2026-03-09", kind="holiday", name="临时闭厅")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and case_no in html and "2026-03-10" in html
    bad = admin.post_form("/admin/calendar", what="day", day="2026-03-10", kind="workday", name="")
    assert bad.status_code == 400 and "weekday" in bad.get_data(as_text=True)
    log = admin.get("/admin/users").get_data(as_text=True).split("管理操作记录")[1]
    assert "修改工作日历" in log, "in the admin audit log"


def test_admin_users(app, deployed):
    admin = Browser(app, "admin")
    assert admin.post_form("/admin/users", op="create", username="li", role="reviewer", department="tax",
                           password="longenough", display_name="李").status_code == 302
    assert admin.post_form("/admin/users", op="create", username="li", role="reviewer", department="tax",
                           password="longenough").status_code == 400
    assert admin.post_form("/admin/users", op="create", username="wu", role="reviewer",
                           password="longenough").status_code == 400  # a reviewer needs a department
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    assert client.post("/login", data={**tokens(login), "username": "li", "password": "longenough"}).status_code == 302
    assert admin.post_form("/admin/users", op="disable", username="li").status_code == 302
    assert client.get("/worklist").status_code == 302, "a disabled account is logged out"
    assert admin.post_form("/admin/users", op="password", username="li", password="short").status_code == 400
    assert admin.post_form("/admin/users", op="enable", username="li").status_code == 302
    assert admin.post_form("/admin/users", op="password", username="li", password="another-long").status_code == 302
    assert admin.post_form("/admin/users", op="disable", username="admin").status_code == 400
    log = admin.get("/admin/users").get_data(as_text=True).split("管理操作记录")[1]  # the audit log only
    for action in ("新建用户", "停用用户", "启用用户", "重置密码"):
        assert action in log


def test_healthz_and_metrics(app, deployed, client):
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json()["status"].startswith("scheduler stale")  # no scheduler ran yet
    for job in ("sweep_clocks", "fire_timers", "expire_tolerated", "deliver_alerts"):
        getattr(jobs, job)(deployed)
    r = client.get("/healthz")  # every job but one has succeeded: the one is named
    assert r.status_code == 503 and r.get_json()["status"] == "scheduler stale: tally_days"
    jobs.tally_days(deployed)
    r = client.get("/healthz")
    body = r.get_json()
    assert r.status_code == 200 and body["database"] == "ok" and body["incidents"] == {"open": 0}
    assert all(state["ok"] for state in body["scheduler"]["jobs"].values())
    accept_case(app)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'onewindow_cases{status="in_progress"} 1' in text
    assert 'onewindow_clocks{scope="step",state="running"} 3' in text
    assert "onewindow_scheduler_lag_seconds{job=\"sweep_clocks\"}" in text
    assert "onewindow_untallied_days 0" in text  # the only case was started today
    assert re.search(r"onewindow_request_seconds_count \d+", text)


def test_a_deployed_file_downloads_as_it_was_uploaded(app, api):
    original = (BPMN / "company_setup.bpmn").read_text(encoding="utf-8")
    r = api.get("/processes/company_setup/versions/1/bpmn", "clerk")
    assert r.status_code == 200 and r.get_data(as_text=True) == original
    assert "company_setup.bpmn" in r.headers["Content-Disposition"]
    assert api.get("/processes/company_setup/versions/99/bpmn", "clerk").status_code == 404
    admin = Browser(app, "admin")
    page = admin.get("/admin/processes/1").get_data(as_text=True)
    assert "/admin/processes/1/bpmn" in page
    assert admin.get("/admin/processes/1/bpmn").get_data(as_text=True) == original
    assert Browser(app, "clerk").get("/admin/processes/1/bpmn").status_code in (302, 403)
