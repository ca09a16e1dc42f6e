"""SLA clocks with the manual clock: warnings and breaches at the right instants, pauses, catch-up,
alerts delivered to a local SMTP server and a local webhook receiver, the missing-calendar case."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import datetime

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from tests.conftest import CLERK, COMPANY, PERSON
from timers.clock import SHANGHAI, to_local
from workflows.administration.clock_store import set_clock
from workflows.casework import cases
from workflows.definitions.processes import bundled_files, deploy
from workflows.models import Alert, AlertDelivery, Pause, SlaClock, WorkItem
from workflows.oversight import delivery, jobs

SAMR = cases.Actor("samr", "reviewer", "samr")
POLICE = cases.Actor("police", "reviewer", "police")
TAX = cases.Actor("tax", "reviewer", "tax")


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def move(database, instant):
    database.transaction(lambda s: set_clock(s, instant, frozen=True))


def items(database, case_id) -> dict[str, WorkItem]:
    with database.read() as s:
        return {i.step: i for i in s.scalars(select(WorkItem).where(WorkItem.case_id == case_id,
                                                                   WorkItem.state.in_(("open", "claimed"))))}


def complete(database, item, actor, data):
    database.transaction(lambda s: cases.complete(s, item.id, actor, data))


def clocks(database, case_id) -> dict[str, SlaClock]:
    with database.read() as s:
        return {(c.step or "case"): c for c in s.scalars(select(SlaClock).where(SlaClock.case_id == case_id))}


def local(instant):
    return to_local(instant) if instant else None


def start_company_case(database, accepted_at):
    move(database, accepted_at)
    case = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    complete(database, items(database, case.id)["accept"], CLERK, {"decision": "accept"})
    return case


class Webhook:
    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[dict, str, bytes]] = []
        self.fail_first = fail_first
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail_first > 0:
                    hook.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                hook.received.append((json.loads(body), self.headers["X-OneWindow-Signature"], body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Mailbox:
    def __init__(self):
        self.messages: list[bytes] = []
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                box.messages.append(envelope.content)
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self):
        self.controller.stop()


@pytest.fixture
def channels(monkeypatch):
    hook, mail = Webhook(fail_first=1), Mailbox()
    monkeypatch.setenv("ONEWINDOW_WEBHOOK_URLS", hook.url)
    monkeypatch.setenv("ONEWINDOW_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("ONEWINDOW_ALERT_EMAILS", "supervisor@hall.example")
    monkeypatch.setenv("ONEWINDOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ONEWINDOW_SMTP_PORT", str(mail.port))
    yield hook, mail
    hook.close()
    mail.close()


def test_company_setup_seal_step_warns_and_breaches_at_the_right_instants(deployed, manual_clock, channels):
    database = deployed
    hook, mail = channels
    case = start_company_case(database, at(2026, 2, 13, 15))
    c = clocks(database, case.id)
    assert local(c["case"].due_at) == at(2026, 2, 14, 15)  # the make-up Saturday
    assert local(c["case"].warn_at) == at(2026, 2, 14, 13, 24)  # 80 % of 480 minutes used
    assert local(c["seal"].due_at) == at(2026, 2, 13, 18)
    assert local(c["seal"].warn_at) == at(2026, 2, 13, 17)  # 1 working hour left comes before 80 %
    assert local(c["invoice"].due_at) == at(2026, 2, 13, 16, 30)

    move(database, at(2026, 2, 13, 16))
    work = items(database, case.id)
    complete(database, work["registration"], SAMR, {"approval": "approve", "license_no": "L"})
    complete(database, work["invoice"], TAX, {"taxpayer_no": "T"})

    move(database, at(2026, 2, 13, 16, 59))
    assert jobs.sweep_clocks(database).warnings == 0
    move(database, at(2026, 2, 13, 17, 0))
    assert (jobs.sweep_clocks(database).warnings, jobs.sweep_clocks(database).warnings) == (1, 0)
    move(database, at(2026, 2, 13, 18, 0))
    assert jobs.sweep_clocks(database).breaches == 1

    c = clocks(database, case.id)
    assert (c["registration"].state, c["invoice"].state) == ("met", "met")
    assert c["seal"].state == "breached" and local(c["seal"].breached_at) == at(2026, 2, 13, 18)
    assert c["case"].state == "running", "a step can be red while the case is still on time"
    with database.read() as s:
        alerts = s.scalars(select(Alert).order_by(Alert.at)).all()
    assert [(a.level, a.step, local(a.at)) for a in alerts] == [
        ("warning", "seal", at(2026, 2, 13, 17)), ("breach", "seal", at(2026, 2, 13, 18))]
    assert "department:police" in alerts[0].concerned and "role:supervisor" in alerts[0].concerned

    # delivery: the webhook refuses the first post (the warning), takes the rest; e-mail goes straight through
    assert jobs.deliver_alerts(database) == (3, 1)
    assert len(mail.messages) == 2 and case.case_no.encode() in mail.messages[0]
    assert [p["level"] for p, _, _ in hook.received] == ["breach"]
    with database.read() as s:
        pending = s.scalars(select(AlertDelivery).where(AlertDelivery.state == "pending")).all()
        assert len(pending) == 1 and pending[0].attempts == 1 and "503" in pending[0].last_error
    assert jobs.deliver_alerts(database) == (0, 0)  # not before its back-off
    move(database, at(2026, 2, 13, 18, 5))  # past the 30 s back-off
    assert jobs.deliver_alerts(database) == (1, 0)
    assert sorted(p["level"] for p, _, _ in hook.received) == ["breach", "warning"]
    for payload, signature, body in hook.received:
        assert signature == delivery.sign("s3cret", body)
        assert payload["case_no"] == case.case_no and payload["step"] == "seal"
    assert jobs.deliver_alerts(database) == (0, 0)  # nothing is sent twice

    # finishing the seal late marks it met late
    move(database, at(2026, 2, 14, 9, 30))
    complete(database, items(database, case.id)["seal"], POLICE, {"seal_no": "S"})
    assert clocks(database, case.id)["seal"].state == "met_late"


def test_pause_spanning_national_day_moves_every_clock_out(deployed, manual_clock):
    database = deployed
    move(database, at(2026, 9, 30, 10))
    case = database.transaction(lambda s: cases.start_case(s, "property_registration", PERSON,
                                                           {"registration_kind": "general"}, CLERK))
    complete(database, items(database, case.id)["accept"], CLERK, {"decision": "accept"})
    c = clocks(database, case.id)
    assert local(c["case"].due_at) == at(2026, 10, 9, 18)
    assert local(c["tax"].due_at) == at(2026, 10, 9, 18)

    move(database, at(2026, 9, 30, 16))
    database.transaction(lambda s: cases.pause(s, case.case_no, "supplement", "缺少完税凭证", CLERK))
    assert {x.state for x in clocks(database, case.id).values()} == {"paused"}
    with pytest.raises(cases.Conflict):
        complete(database, items(database, case.id)["tax"], TAX, {"tax_paid": True})
    with pytest.raises(cases.Conflict):
        database.transaction(lambda s: cases.pause(s, case.case_no, "special", "again", CLERK))

    move(database, at(2026, 10, 8, 10))
    record = database.transaction(lambda s: cases.resume(s, case.case_no, CLERK))
    assert record.working_minutes == 180  # Sep 30 16:00-18:00 and Oct 8 09:00-10:00
    c = clocks(database, case.id)
    # Oct 9 18:00 + 3 working hours = the make-up Saturday Oct 10, 12:00
    assert local(c["case"].due_at) == at(2026, 10, 10, 12)
    assert local(c["tax"].due_at) == at(2026, 10, 10, 12)
    assert {x.state for x in c.values()} == {"running"}
    assert c["case"].paused_minutes == 180
    with database.read() as s:
        p = s.scalar(select(Pause))
        assert (p.kind, p.reason, p.started_by, p.ended_by) == ("supplement", "缺少完税凭证", "clerk", "clerk")


def test_scheduler_once_after_downtime_records_each_missed_alert_once_at_its_true_time(deployed, manual_clock,
                                                                                        db_url):
    database = deployed
    case = start_company_case(database, at(2026, 3, 9, 9))
    # nobody works the case; the scheduler is down for three working days
    move(database, at(2026, 3, 12, 11))
    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_CLOCK": "manual"}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "webapp.cli", "scheduler", "--once"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    with database.read() as s:
        alerts = s.scalars(select(Alert).where(Alert.case_no == case.case_no).order_by(Alert.at, Alert.id)).all()
    got = sorted((a.step or "case", a.level, local(a.at)) for a in alerts)
    assert got == sorted([
        ("invoice", "warning", at(2026, 3, 9, 9, 30)), ("invoice", "breach", at(2026, 3, 9, 10, 30)),
        ("registration", "warning", at(2026, 3, 9, 11)), ("registration", "breach", at(2026, 3, 9, 12)),
        ("seal", "warning", at(2026, 3, 9, 11)), ("seal", "breach", at(2026, 3, 9, 12)),
        ("case", "warning", at(2026, 3, 9, 16, 24)), ("case", "breach", at(2026, 3, 9, 18)),
        # the seal's boundary timer (PT3H) made a 督办 task for the supervisors, with a PT2H clock of its own
        ("escalate_seal", "escalation", at(2026, 3, 9, 12)),
        ("escalate_seal", "warning", at(2026, 3, 9, 14)), ("escalate_seal", "breach", at(2026, 3, 9, 15)),
    ])


def test_a_year_without_schedule_shows_calendar_missing_until_it_is_loaded(deployed, manual_clock, client, api):
    database = deployed
    five_days = next(p for p in bundled_files() if p.name == "company_setup.bpmn").read_bytes().replace(
        b'name="case_budget" value="catalogue"', b'name="case_budget" value="P5D"')
    database.transaction(lambda s: deploy(s, five_days, "company_setup.bpmn"))
    case = start_company_case(database, at(2026, 12, 28, 10))
    c = clocks(database, case.id)["case"]
    assert c.due_at is None and c.calendar_missing == 2027
    with database.read() as s:
        notice = s.scalar(select(Alert).where(Alert.level == "calendar_missing"))
        assert notice.concerned == ["role:admin"] and "2027" in notice.message
    shown = api.get(f"/cases/{case.case_no}").get_json()
    case_clock = next(x for x in shown["clocks"] if x["scope"] == "case")
    assert (case_clock["due_at"], case_clock["calendar_missing"], case_clock["colour"]) == (None, 2027, "unknown")
    r = api.get("/calendar/due?start=2026-12-28T10:00:00%2B08:00&duration=P5D")
    assert r.status_code == 409 and "2027" in r.get_json()["message"]

    r = api.post("/calendar/years/2027", json={"holidays": {"2027-01-01": "元旦"}, "workdays": {}})
    assert r.status_code == 200, r.get_json()
    assert [m["case_no"] for m in r.get_json()["moved_clocks"]] == [case.case_no]
    shown = api.get(f"/cases/{case.case_no}").get_json()
    case_clock = next(x for x in shown["clocks"] if x["scope"] == "case")
    assert case_clock["due_at"] == "2027-01-05T18:00:00+08:00" and case_clock["calendar_missing"] is None
    assert api.get("/calendar/due?start=2026-12-28T10:00:00%2B08:00&duration=P5D").get_json()["due"] == \
        "2027-01-05T18:00:00+08:00"
    # one notice for the year, however many clocks met the gap
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.level == "calendar_missing")) == 1
