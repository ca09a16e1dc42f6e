"""The clock, calendar, pause and alert endpoints and commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import COMPANY


def cli(db_url, *args, manual=False):
    env = {**os.environ, "DATABASE_URL": db_url}
    env.pop("ONEWINDOW_CLOCK", None)
    if manual:
        env["ONEWINDOW_CLOCK"] = "manual"
    return subprocess.run([sys.executable, "-m", "webapp.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_clock_is_settable_only_in_manual_mode(api, manual_clock, monkeypatch):
    monkeypatch.setattr(manual_clock, "manual", False)
    r = api.call("PUT", "/clock", "admin", json={"now": "2026-02-13T15:00:00+08:00"})
    assert r.status_code == 403 and "manual" in r.get_json()["message"]
    monkeypatch.setattr(manual_clock, "manual", True)
    assert api.call("PUT", "/clock", "clerk", json={"now": "2026-02-13T15:00:00+08:00"}).status_code == 403
    assert api.call("PUT", "/clock", "admin", json={"now": "yesterday"}).status_code == 400
    r = api.call("PUT", "/clock", "admin", json={"now": "2026-02-13T15:00:00+08:00", "frozen": True})
    assert r.status_code == 200 and r.get_json()["now"] == "2026-02-13T15:00:00+08:00"
    assert api.get("/clock").get_json() == {"now": "2026-02-13T15:00:00+08:00", "manual": True}


def test_pause_resume_and_alert_acknowledgement_over_http(api, manual_clock):
    api.call("PUT", "/clock", "admin", json={"now": "2026-02-13T15:00:00+08:00", "frozen": True})
    case = api.start("company_setup")
    no = case["case_no"]
    api.complete(api.open_items(no)["accept"], "clerk", {"decision": "accept"})
    assert api.post(f"/cases/{no}/pause", "clerk", json={"kind": "holiday", "reason": "x"}).status_code == 400
    assert api.post(f"/cases/{no}/pause", "ndrc", json={"kind": "special", "reason": "x"}).status_code == 403
    r = api.post(f"/cases/{no}/pause", "police", json={"kind": "special", "reason": "印模检验"})
    assert r.status_code == 201, r.get_json()
    shown = api.get(f"/cases/{no}").get_json()
    assert shown["status"] == "paused" and {c["state"] for c in shown["clocks"]} == {"paused"}
    api.call("PUT", "/clock", "admin", json={"now": "2026-02-13T16:00:00+08:00", "frozen": True})
    r = api.post(f"/cases/{no}/resume", "police")
    assert r.status_code == 200 and r.get_json()["working_minutes"] == 60
    shown = api.get(f"/cases/{no}").get_json()
    seal = next(c for c in shown["clocks"] if c["step"] == "seal")
    assert seal["due_at"] == "2026-02-14T10:00:00+08:00" and seal["paused_minutes"] == 60
    assert [p["reason"] for p in shown["pauses"]] == ["印模检验"]
    assert api.post(f"/cases/{no}/resume", "police").status_code == 409

    api.call("PUT", "/clock", "admin", json={"now": "2026-02-14T12:00:00+08:00", "frozen": True})
    api.tokens.clear()  # a day later the 12-hour tokens have expired
    from workflows.oversight import jobs
    jobs.sweep_clocks(api.client.application.extensions["onewindow.db"])
    mine = api.get("/alerts?acknowledged=false", "police").get_json()
    assert {a["step"] for a in mine["alerts"]} == {"seal"}  # police see their own department's
    assert api.get("/alerts", "supervisor").get_json()["total"] > mine["total"]
    first = mine["alerts"][0]
    tax_attempt = api.post(f"/alerts/{first['id']}/acknowledge", "tax", json={"comment": "no"})
    assert tax_attempt.status_code == 403
    r = api.post(f"/alerts/{first['id']}/acknowledge", "police", json={"comment": "已催办"})
    assert r.status_code == 200 and r.get_json()["acknowledged_by"] == "police"
    assert api.post(f"/alerts/{first['id']}/acknowledge", "police", json={}).status_code == 409
    history = api.get(f"/cases/{no}").get_json()["history"]
    assert "alert.acknowledged" in [e["action"] for e in history]


def test_calendar_endpoints(api):
    years = [y["year"] for y in api.get("/calendar/years").get_json()["years"]]
    assert years == [2025, 2026]
    days = api.get("/calendar/years/2026").get_json()["days"]
    assert {"day": "2026-10-10", "kind": "workday", "name": "国庆节调休"} in days
    due = api.get("/calendar/due?start=2026-02-13T15:00:00%2B08:00&duration=PT8H").get_json()
    assert due["due"] == "2026-02-14T15:00:00+08:00"
    naive = api.get("/calendar/due?start=2026-09-30T10:00:00&duration=P5D").get_json()
    assert naive["due"] == "2026-10-13T18:00:00+08:00", "a time without zone is the hall's time"
    assert api.get("/calendar/due?start=2026-02-13T15:00:00&duration=3h").status_code == 400
    el = api.get("/calendar/elapsed?start=2026-02-13T15:00:00&end=2026-02-14T15:00:00").get_json()
    assert el == {"minutes": 480, "duration": "PT8H0M"}
    assert api.call("PUT", "/calendar/days/2026-03-09", "clerk", json={"kind": "holiday"}).status_code == 403
    assert api.call("PUT", "/calendar/days/2026-03-09", "admin", json={"kind": "workday"}).status_code == 400
    r = api.call("PUT", "/calendar/days/2026-03-09", "admin", json={"kind": "holiday", "name": "临时停办"})
    assert r.status_code == 200
    moved = api.get("/calendar/due?start=2026-03-06T17:00:00&duration=PT2H").get_json()
    assert moved["due"] == "2026-03-10T10:00:00+08:00"  # Monday 9th is now off
    r = api.call("PUT", "/calendar/office-hours/summer", "admin",
                 json={"periods": [["09:00", "12:00"], ["14:00", "18:00"]], "valid_from": "2026-06-01",
                       "valid_to": "2026-09-30"})
    assert r.status_code == 200, r.get_json()
    summer = api.get("/calendar/due?start=2026-07-06T11:00:00&duration=PT2H").get_json()
    assert summer["due"] == "2026-07-06T15:00:00+08:00"
    bad = api.call("PUT", "/calendar/office-hours/x", "admin", json={"periods": [["13:00", "12:00"]]})
    assert bad.status_code == 400
    r = api.post("/calendar/years/2099", "admin", json={})
    assert r.status_code == 409 and "2099" in r.get_json()["message"]


@pytest.mark.slow
def test_calendar_commands(deployed, db_url):
    out = cli(db_url, "calendar", "due", "2026-02-13T15:00", "PT8H")
    assert out.returncode == 0 and out.stdout.strip() == "2026-02-14T15:00:00+08:00"
    out = cli(db_url, "calendar", "due", "2026-09-30T10:00+08:00", "P5D")
    assert out.stdout.strip() == "2026-10-13T18:00:00+08:00"
    out = cli(db_url, "calendar", "elapsed", "2026-02-13T15:00", "2026-02-14T15:00")
    assert out.returncode == 0 and out.stdout.startswith("PT8H0M")
    out = cli(db_url, "calendar", "due", "2026-12-28T10:00", "P5D")
    assert out.returncode != 0 and "2027" in out.stderr and "Traceback" not in out.stderr
    out = cli(db_url, "calendar", "due", "2026-12-28T10:00", "five days")
    assert out.returncode != 0 and "duration" in out.stderr
    out = cli(db_url, "calendar", "due", "someday", "P5D")
    assert out.returncode != 0 and "ISO-8601" in out.stderr
    assert cli(db_url, "clock", "set", "2026-02-13T15:00").returncode != 0
    out = cli(db_url, "clock", "set", "2026-02-13T15:00", "--frozen", manual=True)
    assert out.returncode == 0, out.stderr
    out = cli(db_url, "clock", "show", manual=True)
    assert out.stdout.startswith("2026-02-13T15:00:00+08:00")
    out = cli(db_url, "calendar", "years")
    assert out.returncode == 0 and "2026" in out.stdout


def test_case_creation_still_rejects_bad_input_with_clocks(api):
    r = api.post("/cases", "clerk", json={"process": "company_setup", "applicant": {**COMPANY, "contact": "x"}})
    assert r.status_code == 400 and "contact" in r.get_json()["message"]
