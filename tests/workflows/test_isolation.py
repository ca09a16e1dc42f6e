# ruff: noqa: E501  (the BPMN fixture is XML, one element a line)
"""Nothing one case does can stall the others: script budgets, no evaluation under the write lock,
incidents instead of stalled jobs."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select

from tests.conftest import CLERK, COMPANY
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.casework import cases
from workflows.definitions import script_limits
from workflows.definitions.processes import deploy
from workflows.errors import Conflict
from workflows.models import AuditEvent, Case, Incident, WorkItem
from workflows.oversight import incidents, jobs

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


def process(key: str, script: str = "x = 1", timer: str = '"PT1M"', condition: str = "True",
            start_fields: str = "", after: str = "y = 1") -> bytes:
    """start → 受理 → script task → gateway (condition) → timer → script task → 答复 → end; one lane."""
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="d_{key}" targetNamespace="http://onewindow.gov.cn/bpmn">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane" name="综合窗口">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>accept</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>calc</bpmn:flowNodeRef><bpmn:flowNodeRef>gw</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>wait</bpmn:flowNodeRef><bpmn:flowNodeRef>answer</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef><bpmn:flowNodeRef>end_no</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>after</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start">{start_fields}<bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="accept" name="受理审查"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="calc" name="计算"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="gw" name="判断" default="f_no"><bpmn:incoming>f3</bpmn:incoming>
      <bpmn:outgoing>f4</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:intermediateCatchEvent id="wait" name="等待"><bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t"><bpmn:timeDuration>{escape(timer)}</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="after" name="到期处理"><bpmn:incoming>f5</bpmn:incoming><bpmn:outgoing>f5b</bpmn:outgoing>
      <bpmn:script>{escape(after)}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="answer" name="答复"><bpmn:incoming>f5b</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_no"><bpmn:incoming>f_no</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="accept" />
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="calc" />
    <bpmn:sequenceFlow id="f3" sourceRef="calc" targetRef="gw" />
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="wait"><bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="end_no" />
    <bpmn:sequenceFlow id="f5" sourceRef="wait" targetRef="after" />
    <bpmn:sequenceFlow id="f5b" sourceRef="after" targetRef="answer" />
    <bpmn:sequenceFlow id="f6" sourceRef="answer" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>'''.encode()


MONDAY_10 = datetime(2026, 3, 9, 10, tzinfo=SHANGHAI)


def start(database, key: str, data: dict | None = None):
    case = database.transaction(lambda s: cases.start_case(s, key, COMPANY, data or {}, CLERK))
    with database.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id, WorkItem.step == "accept"))
    return case, item


def snapshot(database, case_id):
    with database.read() as s:
        case = s.get(Case, case_id)
        return (case.revision, case.status, case.state,
                sorted((i.id, i.state) for i in s.scalars(select(WorkItem).where(WorkItem.case_id == case_id))),
                len(s.scalars(select(AuditEvent.id).where(AuditEvent.case_id == case_id)).all()))


HOSTILE = {
    "endless loop": "while True:\n    pass",
    "huge power": "x = 10**(10**7)",
    "2 GB string": "x = 'a' * (2 * 10**9)",
    "nested generator": "x = sum(1 for i in range(10**6) for j in range(10**6))",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_script_task_ends_in_a_clear_error_and_changes_nothing(deployed, name):
    database = deployed
    key = "hostile_" + name.replace(" ", "_")
    database.transaction(lambda s: deploy(s, process(key, script=HOSTILE[name]), f"{key}.bpmn"))
    case, item = start(database, key)
    before = snapshot(database, case.id)
    started = time.monotonic()
    with pytest.raises(Conflict) as refused:
        cases.complete_step(database, item.id, CLERK, {})
    assert time.monotonic() - started < script_limits.CPU_SECONDS + 5
    assert "计算" in refused.value.message  # the element is named
    assert any(word in refused.value.message for word in ("CPU time", "too large", "too long"))
    assert snapshot(database, case.id) == before


def test_hostile_conditions_and_timer_expressions_are_stopped(deployed):
    database = deployed
    database.transaction(lambda s: deploy(s, process("cond", condition="10**(10**7) > 1"), "c.bpmn"))
    database.transaction(lambda s: deploy(s, process("timer", timer="'P' + str(len('a' * (2 * 10**9))) + 'D'"),
                                          "t.bpmn"))
    database.transaction(lambda s: deploy(s, process("slowtimer", timer="'PT%dM' % sum(1 for i in range(10**6) "
                                                                        "for j in range(10**6))"), "s.bpmn"))
    for key in ("cond", "timer", "slowtimer"):
        case, item = start(database, key)
        before = snapshot(database, case.id)
        with pytest.raises(Conflict) as refused:
            cases.complete_step(database, item.id, CLERK, {})
        assert "too large" in refused.value.message or "CPU time" in refused.value.message
        assert snapshot(database, case.id) == before


def test_a_busy_script_does_not_hold_up_another_clients_write(deployed, monkeypatch):
    """The script runs with no lock held: an unrelated case is started while it still runs."""
    database = deployed
    monkeypatch.setattr(script_limits, "CPU_SECONDS", 2.0)
    database.transaction(lambda s: deploy(s, process("busy", script="while True:\n    pass"), "busy.bpmn"))
    _, item = start(database, "busy")
    finished: dict[str, float] = {}

    def busy():
        with pytest.raises(Conflict):
            cases.complete_step(database, item.id, CLERK, {})
        finished["script"] = time.monotonic()

    worker = threading.Thread(target=busy)
    worker.start()
    time.sleep(0.3)  # the script is running now
    begun = time.monotonic()
    other = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    finished["write"] = time.monotonic()
    worker.join(30)
    assert other.case_no and "script" in finished
    assert finished["write"] < finished["script"], "the unrelated write waited for the script"
    assert finished["write"] - begun < 1.0


def test_data_a_case_cannot_keep_is_refused_with_the_variable_named(deployed):
    database = deployed
    database.transaction(lambda s: deploy(s, process("gen", script="numbers = (i for i in range(3))"), "g.bpmn"))
    case, item = start(database, "gen")
    before = snapshot(database, case.id)
    with pytest.raises(Conflict) as refused:
        cases.complete_step(database, item.id, CLERK, {})
    assert "'numbers'" in refused.value.message and "generator" in refused.value.message
    assert snapshot(database, case.id) == before


def test_a_poisoned_case_next_to_100_healthy_ones(deployed, manual_clock, monkeypatch, api):
    """The healthy timers all fire at their instant; the poisoned case (its script at the timer needs
    more CPU time than allowed) becomes one incident, alerted once and retried with back-off; the admin
    raises the limit and retries it, and it goes through."""
    database = deployed
    database.transaction(lambda s: set_clock(s, MONDAY_10, frozen=True))
    fields = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="field:poison" '
              'value="boolean" /></spiffworkflow:properties></bpmn:extensionElements>')
    after = "n = 0\nif poison:\n    for i in range(1000000):\n        n += i"
    database.transaction(lambda s: deploy(s, process("timed", start_fields=fields, after=after), "timed.bpmn"))
    healthy = [start(database, "timed", {"poison": False}) for _ in range(100)]
    poisoned, poisoned_item = start(database, "timed", {"poison": True})
    for _, item in [*healthy, (poisoned, poisoned_item)]:
        cases.complete_step(database, item.id, CLERK, {})
    monkeypatch.setattr(script_limits, "CPU_SECONDS", 0.02)
    database.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, 5, tzinfo=SHANGHAI), frozen=True))

    assert jobs.fire_timers(database) == 100
    with database.read() as s:
        answered = set(s.scalars(select(WorkItem.case_id).where(WorkItem.step == "answer")).all())
        assert answered == {c.id for c, _ in healthy}
        fired = s.scalars(select(AuditEvent).where(AuditEvent.action == "timer.fired")).all()
        assert len(fired) == 100
        # each fired at its own instant (受理 at 10:00 + one working minute), not when the job ran
        items = s.scalars(select(WorkItem).where(WorkItem.step == "answer")).all()
        assert {i.created_at.astimezone(SHANGHAI) for i in items} == {datetime(2026, 3, 9, 10, 1, tzinfo=SHANGHAI)}
        incident = s.scalars(select(Incident)).one()
        assert (incident.case_id, incident.state, incident.attempts) == (poisoned.id, "open", 1)
        assert "到期处理" in incident.error and "CPU time" in incident.error
    # listed for the admin; a reviewer may not see it
    listed = api.get("/incidents").get_json()["incidents"]
    assert [(i["case_no"], i["job"], i["attempts"]) for i in listed] == [(poisoned.case_no, "fire_timers", 1)]
    assert api.get("/incidents", as_user="police").status_code == 403
    alerts = api.get(f"/alerts?case_no={poisoned.case_no}").get_json()["alerts"]
    assert [a["level"] for a in alerts] == ["incident"]

    # back-off: the next run leaves the case alone until its retry is due; then it fails again, still one alert
    assert jobs.fire_timers(database) == 0
    with database.read() as s:
        assert s.get(Incident, incident.id).attempts == 1
    database.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, 6, tzinfo=SHANGHAI), frozen=True))
    assert jobs.fire_timers(database) == 0
    with database.read() as s:
        retried = s.get(Incident, incident.id)
        assert retried.attempts == 2 and retried.next_attempt_at > retried.last_at
    assert len(api.get(f"/alerts?case_no={poisoned.case_no}").get_json()["alerts"]) == 1

    # the admin fixes the cause and retries at once
    monkeypatch.setattr(script_limits, "CPU_SECONDS", 30.0)
    r = api.post(f"/incidents/{incident.id}/retry")
    assert r.status_code == 200, r.get_json()
    assert jobs.fire_timers(database) == 1
    with database.read() as s:
        assert s.get(Incident, incident.id).state == "resolved"
        assert s.scalar(select(WorkItem.id).where(WorkItem.case_id == poisoned.id, WorkItem.step == "answer"))
    assert api.get("/incidents").get_json()["incidents"] == []
    assert api.post(f"/incidents/{incident.id}/retry").status_code == 409
    assert incidents.open_count  # the module's count is what /healthz reports


def test_a_slow_webhook_holds_up_no_write(deployed, monkeypatch):
    """Alerts are sent with no transaction open: while a webhook answers after 2 s, a case is started."""
    import http.server

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(2)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ONEWINDOW_WEBHOOK_URLS", f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        deployed.transaction(lambda s: incidents.record(s, "fire_timers", None, None, "a test incident"))
        finished: dict[str, float] = {}

        def deliver():
            finished["result"] = jobs.deliver_alerts(deployed)
            finished["delivery"] = time.monotonic()

        worker = threading.Thread(target=deliver)
        worker.start()
        time.sleep(0.5)  # the webhook is being called now
        deployed.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
        finished["write"] = time.monotonic()
        worker.join(30)
        assert finished["result"] == (1, 0)  # sent once, no failure
        assert finished["write"] < finished["delivery"], "the write waited for the webhook"
    finally:
        server.shutdown()


def test_no_expression_runs_under_the_sqlite_write_lock(app, deployed, db_url, api, manual_clock, monkeypatch):
    """A whole company-setup case — intake at the window page, the departments' steps through the API,
    the seal step's BPMN timer firing in the scheduler's job — evaluates its conditions and timer
    expressions with no write lock held."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's (PostgreSQL locks one case row)")
    from tests.webapp.test_pages import accept_case
    from workflows.definitions.scripting import RestrictedEnvironment

    held: list[int] = []
    queues = []

    def spy(original):
        def wrapper(self, *args, **kwargs):
            held.append(max((getattr(q.local, "depth", 0) for q in queues), default=0))
            return original(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(RestrictedEnvironment, "evaluate", spy(RestrictedEnvironment.evaluate))
    monkeypatch.setattr(RestrictedEnvironment, "execute", spy(RestrictedEnvironment.execute))
    queues.append(app.extensions["onewindow.db"]._writer_lock)
    queues.append(deployed._writer_lock)
    deployed.transaction(lambda s: set_clock(s, MONDAY_10, frozen=True))
    case_no, _ = accept_case(app)  # the intake page: a new case and its 受理 at once
    items = api.open_items(case_no)
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "L"})
    api.complete(items["invoice"], "tax", {"taxpayer_no": "T"})
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 14, 30, tzinfo=SHANGHAI), frozen=True))
    assert jobs.fire_timers(deployed) == 1  # 刻章超时: the 督办 step
    assert "escalate_seal" in api.open_items(case_no)
    assert held and set(held) == {0}, f"{held.count(1)} of {len(held)} evaluations held the write lock"
