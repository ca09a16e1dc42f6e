"""What a file from another modeler leaves implicit, read with BPMN's meaning (issue 14): flows without an id,
an activity with no flow leaving it (an implicit end), gateways whose flows carry no condition (a person
chooses), timer start events, repeating timers in working time, what scripts, timers and multi-instance steps
read but no form declares, Camunda's multi-instance counters, and messages and signals handed to a case."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from workflows.casework import cases, messages
from workflows.definitions import engine, processes
from workflows.definitions.forms import Field, validate
from workflows.errors import Conflict, Forbidden, InvalidInput, InvalidProcess
from workflows.models import Case, WorkItem
from workflows.oversight import jobs

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:activiti="http://activiti.org/bpmn"
  id="defs" targetNamespace="http://example.org">
"""
APPLICANT = {"type": "person", "name": "张三", "id_no": "11010519491231002X"}
ADMIN = cases.Actor("admin", "admin", None)
SUPERVISOR = cases.Actor("supervisor", "supervisor", None)


def _file(body: str, process_id: str = "read", head_extra: str = "") -> bytes:
    return (HEAD + head_extra + f'<process id="{process_id}" name="Read elsewhere" isExecutable="true">{body}'
            "</process></definitions>").encode()


def _deploy(database, content: bytes):
    with database.read() as session:
        checked = processes.check_file(content, "read.bpmn", "window", session)
    database.transaction(lambda s: processes.deploy(s, content, "read.bpmn", "test", checked, True))
    return checked


def _start(database, key: str = "read", data: dict | None = None) -> Case:
    return database.transaction(lambda s: cases.start_case(s, key, APPLICANT, data or {}, cases.SYSTEM))


def _open(database, case_id: int) -> list[WorkItem]:
    with database.read() as session:
        return list(session.scalars(select(WorkItem).where(WorkItem.case_id == case_id, WorkItem.state.in_(
            cases.OPEN_STATES)).order_by(WorkItem.id)))


def _do(database, item: WorkItem, data: dict | None = None) -> None:
    database.transaction(lambda s: cases.complete(s, item.id, ADMIN, data or {}))


def _engine_data(database, case: Case) -> dict:
    with database.read() as session:
        workflow = engine.load(case.state, processes.definition_for(processes.cached_version(
            session, case.process_version_id)))
    return workflow.last_task.data if workflow.last_task else workflow.data


def _case(database, case_id: int) -> Case:
    with database.read() as session:
        return session.get(Case, case_id)


def test_flows_without_an_id_and_an_activity_with_no_way_out_end_the_case(deployed):
    # Flowable's test files leave flows unnamed; a task with no outgoing flow ends its token (implicit end)
    content = _file('<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="a"/><userTask id="a" name="A"/>')
    _deploy(deployed, content)
    case = _start(deployed)
    (item,) = _open(deployed, case.id)
    assert item.step == "a"
    _do(deployed, item)
    assert _case(deployed, case.id).status == "completed"


def test_a_gateway_without_conditions_is_a_choice_of_the_step_before(deployed):
    content = _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="check"/>
      <userTask id="check" name="Check the quote"/><sequenceFlow id="f1" sourceRef="check" targetRef="gw"/>
      <exclusiveGateway id="gw" name="Quote acceptable?"/>
      <sequenceFlow id="yes" name="Yes" sourceRef="gw" targetRef="sign"/>
      <sequenceFlow id="no" sourceRef="gw" targetRef="reject"/>
      <userTask id="sign" name="Sign"/><sequenceFlow id="f2" sourceRef="sign" targetRef="e1"/><endEvent id="e1"/>
      <userTask id="reject" name="Tell the customer"/><sequenceFlow id="f3" sourceRef="reject" targetRef="e2"/>
      <endEvent id="e2"/>""")
    checked = _deploy(deployed, content)
    (field,) = checked.steps["check"].fields
    assert field.type == "choice" and field.label == "Quote acceptable?"
    assert set(field.options) == {"Yes", "Tell the customer"}  # a flow's name, else its target's
    assert any("chooses the way" in w for w in checked.warnings)
    case = _start(deployed)
    _do(deployed, _open(deployed, case.id)[0], {field.name: "Tell the customer"})
    assert [i.step for i in _open(deployed, case.id)] == ["reject"]
    with pytest.raises(InvalidInput):  # the choice is required and must be one of the ways
        _do(deployed, _start_item(deployed), {field.name: "Maybe"})


def _start_item(database) -> WorkItem:
    return _open(database, _start(database).id)[0]


def test_an_inclusive_gateways_unconditional_flows_are_all_taken(deployed):
    content = _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="gw"/><inclusiveGateway id="gw"/>
      <sequenceFlow id="a1" sourceRef="gw" targetRef="a"/><sequenceFlow id="b1" sourceRef="gw" targetRef="b"/>
      <userTask id="a" name="A"/><userTask id="b" name="B"/>""")
    _deploy(deployed, content)
    case = _start(deployed)
    assert sorted(i.step for i in _open(deployed, case.id)) == ["a", "b"]


def test_a_timer_start_event_is_set_aside_with_a_warning(deployed):
    content = _file("""<startEvent id="s"><timerEventDefinition><timeCycle>R3/PT10H</timeCycle>
      </timerEventDefinition></startEvent><sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
      <userTask id="a" name="A"/><sequenceFlow id="f1" sourceRef="a" targetRef="e"/><endEvent id="e"/>""")
    checked = _deploy(deployed, content)
    assert any("starts when it is taken in" in w for w in checked.warnings)
    assert [i.step for i in _open(deployed, _start(deployed).id)] == ["a"]


def test_a_repeating_timer_counts_working_time_and_stops_after_its_count(deployed, manual_clock):
    # a reminder every working hour, three times, while the step is open (non-interrupting)
    manual_clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # a Monday
    content = _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="work"/>
      <userTask id="work" name="Work"/><sequenceFlow id="f1" sourceRef="work" targetRef="e"/><endEvent id="e"/>
      <boundaryEvent id="remind" attachedToRef="work" cancelActivity="false">
        <timerEventDefinition><timeCycle>R3/PT1H</timeCycle></timerEventDefinition></boundaryEvent>
      <sequenceFlow id="f2" sourceRef="remind" targetRef="note"/><manualTask id="note" name="Reminder"/>""")
    _deploy(deployed, content)
    case = _start(deployed)
    due = [_case(deployed, case.id).next_timer_at]
    for _ in range(4):
        manual_clock.advance(timedelta(hours=1, minutes=1))
        jobs.fire_timers(deployed)
        due.append(_case(deployed, case.id).next_timer_at)
    reminders = [i for i in _open(deployed, case.id) if i.step == "note"]
    assert len(reminders) == 3  # R3: three times, no more
    assert due[0] is not None and due[-1] is None
    assert due[0].astimezone(ZoneInfo("Asia/Shanghai")).hour == 10  # an hour of working time after 09:00


def test_what_scripts_timers_and_multi_instance_steps_read_is_asked_for(deployed, manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    content = _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="form"/>
      <userTask id="form" name="Form"/><sequenceFlow id="f1" sourceRef="form" targetRef="calc"/>
      <scriptTask id="calc" name="Compute" scriptFormat="python"><script>total = price * 2</script></scriptTask>
      <sequenceFlow id="f2" sourceRef="calc" targetRef="sign"/>
      <userTask id="sign" name="Sign">
        <multiInstanceLoopCharacteristics><loopDataInputRef>signers</loopDataInputRef>
          <loopDataOutputRef>opinions</loopDataOutputRef>
          <inputDataItem id="signer" name="signer"/><outputDataItem id="opinion" name="opinion"/>
        </multiInstanceLoopCharacteristics></userTask>
      <sequenceFlow id="f3" sourceRef="sign" targetRef="wait"/>
      <intermediateCatchEvent id="wait" name="Until the date"><timerEventDefinition>
        <timeDate>${until}</timeDate></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f4" sourceRef="wait" targetRef="e"/><endEvent id="e"/>""")
    checked = _deploy(deployed, content)
    asked = {f.name: f.type for f in checked.steps["form"].fields}
    assert asked == {"price": "number", "signers": "list", "until": "date"}
    assert [f.name for f in checked.steps["sign"].fields] == ["opinion"]  # what each instance returns
    case = _start(deployed)
    _do(deployed, _open(deployed, case.id)[0], {"price": 3, "signers": "window、samr", "until": "2026-03-04"})
    signing = _open(deployed, case.id)
    assert sorted(i.department for i in signing) == ["samr", "window"]  # one 会签 item each
    for item in signing:
        _do(deployed, item, {"opinion": "agree"})
    record = _case(deployed, case.id)
    assert _engine_data(deployed, record)["total"] == 6 and record.status == "in_progress"
    assert record.next_timer_at == datetime(2026, 3, 4, tzinfo=ZoneInfo("Asia/Shanghai"))  # the day's start
    manual_clock.set(datetime(2026, 3, 4, 0, 1, tzinfo=ZoneInfo("Asia/Shanghai")))
    jobs.fire_timers(deployed)
    assert _case(deployed, case.id).status == "completed"


@pytest.mark.parametrize("script, said", [
    ("x = get_last_user_completing_task('p', 't')", "calls get_last_user_completing_task()"),
    ("fact = scripts.FactService.random(kind)", "uses 'scripts'"),
])
def test_a_script_using_another_engines_functions_is_refused_naming_it(script, said):
    content = _file(f"""<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
      <scriptTask id="t" name="Fetch" scriptFormat="python"><script>{script}</script></scriptTask>""")
    with pytest.raises(InvalidProcess) as refused:
        processes.check_file(content, "x.bpmn", "window")
    assert "'t' (Fetch)" in refused.value.message and said in refused.value.message


def test_who_started_the_case_is_known_the_camunda_and_the_spiff_arena_way(deployed):
    content = _file("""<startEvent id="s" camunda:initiator="starter"/>
      <sequenceFlow id="f0" sourceRef="s" targetRef="t"/>
      <scriptTask id="t" name="Note" scriptFormat="python">
        <script>who = get_process_initiator_user()["username"]</script></scriptTask>
      <sequenceFlow id="f1" sourceRef="t" targetRef="a"/><userTask id="a" name="A"/>""")
    _deploy(deployed, content)
    case = deployed.transaction(lambda s: cases.start_case(s, "read", APPLICANT, {}, cases.Actor("clerk", "clerk",
                                                                                                   "window")))
    data = _engine_data(deployed, _case(deployed, case.id))
    assert data["starter"] == "clerk" and data["who"] == "clerk"


def test_camundas_multi_instance_counters_end_a_countersign_early(deployed):
    content = _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="form"/>
      <userTask id="form" name="Form"/><sequenceFlow id="f1" sourceRef="form" targetRef="sign"/>
      <userTask id="sign" name="Sign" activiti:assignee="${assignee}">
        <multiInstanceLoopCharacteristics isSequential="false" activiti:collection="${people}"
          activiti:elementVariable="assignee">
          <completionCondition>${nrOfCompletedInstances/nrOfInstances &gt;= 0.5}</completionCondition>
        </multiInstanceLoopCharacteristics></userTask>
      <sequenceFlow id="f2" sourceRef="sign" targetRef="e"/><endEvent id="e"/>""")
    _deploy(deployed, content)
    case = _start(deployed)
    _do(deployed, _open(deployed, case.id)[0], {"people": ["window", "samr", "tax", "police"]})
    signing = _open(deployed, case.id)
    assert len(signing) == 4
    _do(deployed, signing[0])
    assert _case(deployed, case.id).status == "in_progress"
    _do(deployed, signing[1])  # two of four: half, enough
    assert _case(deployed, case.id).status == "completed"


MESSAGES = """<message id="m_paid" name="fee_paid"/><signal id="sig" name="hall_closed"/>"""


def _waiting_process() -> bytes:
    return _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="split"/><parallelGateway id="split"/>
      <sequenceFlow id="f1" sourceRef="split" targetRef="paid"/>
      <sequenceFlow id="f2" sourceRef="split" targetRef="closed"/>
      <intermediateCatchEvent id="paid" name="Fee paid"><messageEventDefinition messageRef="m_paid"/>
      </intermediateCatchEvent>
      <intermediateCatchEvent id="closed" name="Hall closed"><signalEventDefinition signalRef="sig"/>
      </intermediateCatchEvent>
      <sequenceFlow id="f3" sourceRef="paid" targetRef="join"/>
      <sequenceFlow id="f4" sourceRef="closed" targetRef="join"/>
      <parallelGateway id="join"/><sequenceFlow id="f5" sourceRef="join" targetRef="deliver"/>
      <userTask id="deliver" name="Deliver"/><sequenceFlow id="f6" sourceRef="deliver" targetRef="e"/>
      <endEvent id="e"/>""", head_extra=MESSAGES)


def test_a_case_waits_for_a_message_and_a_signal_and_goes_on_when_handed_them(deployed):
    _deploy(deployed, _waiting_process())
    case = _start(deployed)
    with deployed.read() as session:
        waits = messages.waiting_for(session, session.get(Case, case.id))
    assert [(w.kind, w.name, w.element) for w in waits] == [("message", "fee_paid", "paid"),
                                                            ("signal", "hall_closed", "closed")]
    with pytest.raises(Forbidden):
        messages.deliver(deployed, case.case_no, "message", "fee_paid", {}, cases.Actor("li", "reviewer", "tax"))
    with pytest.raises(Conflict) as refused:
        messages.deliver(deployed, case.case_no, "message", "fee_refunded", {}, ADMIN)
    assert "fee_paid" in refused.value.message  # says what it does wait for
    with pytest.raises(InvalidInput):
        messages.deliver(deployed, case.case_no, "message", "fee_paid", {"bad key": 1}, ADMIN)
    assert _case(deployed, case.id).revision == case.revision  # nothing written by a refusal
    messages.deliver(deployed, case.case_no, "message", "fee_paid", {"receipt": "R-1"}, SUPERVISOR)
    assert _open(deployed, case.id) == []
    messages.deliver(deployed, case.case_no, "signal", "closed", {}, ADMIN)  # by the waiting event's id
    record = _case(deployed, case.id)
    assert record.data["receipt"] == "R-1"
    assert [i.step for i in _open(deployed, case.id)] == ["deliver"]


def test_the_api_lists_what_a_case_waits_for_and_takes_a_message(deployed, api):
    _deploy(deployed, _waiting_process())
    case = api.start("read")
    listed = api.get(f"/cases/{case['case_no']}/messages", as_user="supervisor")
    assert listed.status_code == 200
    assert {w["name"] for w in listed.get_json()} == {"fee_paid", "hall_closed"}
    refused = api.post(f"/cases/{case['case_no']}/messages", as_user="clerk", json={"name": "fee_paid"})
    assert refused.status_code == 403
    wrong = api.post(f"/cases/{case['case_no']}/messages", as_user="supervisor", json={"name": "nope"})
    assert wrong.status_code == 409 and "fee_paid" in wrong.get_json()["message"]
    done = api.post(f"/cases/{case['case_no']}/messages", as_user="supervisor",
                    json={"name": "fee_paid", "data": {"receipt": "R-9"}})
    assert done.status_code == 200 and done.get_json()["data"]["receipt"] == "R-9"
    signal = api.post(f"/cases/{case['case_no']}/messages", as_user="admin", json={"kind": "signal",
                                                                                     "name": "hall_closed"})
    assert [i["step"] for i in signal.get_json()["open_items"]] == ["deliver"]
    zh = api.__class__(api.client, language="")
    said = zh.post(f"/cases/{case['case_no']}/messages", as_user="supervisor", json={"name": "fee_paid"})
    assert said.status_code == 409 and "等待" in said.get_json()["message"]


def test_a_list_field_takes_names_separated_the_halls_way():
    field = Field("signers", "list", True, (), "会签人员或部门")
    assert validate([field], {"signers": "samr、tax，police; window"}, "x") == {
        "signers": ["samr", "tax", "police", "window"]}
    assert validate([field], {"signers": ["a", "b"]}, "x") == {"signers": ["a", "b"]}
    for bad in ("  、 ", [1, 2], ["x" * 101], ["n"] * 51):
        with pytest.raises(InvalidInput):
            validate([field], {"signers": bad}, "x")


def test_the_case_page_says_what_the_case_waits_for_and_a_supervisor_records_it(deployed, app):
    from tests.webapp.test_pages import Browser

    _deploy(deployed, _waiting_process())
    case = _start(deployed)
    page_path = f"/cases/{case.case_no}"
    supervisor = Browser(app, "supervisor")
    shown = supervisor.get(page_path).get_data(as_text=True)
    assert "等待外部通知" in shown and "等待消息「Fee paid」" in shown and "等待信号「Hall closed」" in shown
    assert "登记已收到" not in Browser(app, "clerk").get(page_path).get_data(as_text=True)  # supervisors only
    r = supervisor.post_form(page_path, f"{page_path}/messages", kind="message", name="fee_paid")
    assert r.status_code == 302
    after = supervisor.get(page_path).get_data(as_text=True)
    assert "已登记收到，办件继续办理" in after and "登记收到消息" in after
    assert "等待消息「Fee paid」" not in after and "等待信号「Hall closed」" in after
    wrong = supervisor.post_form(page_path, f"{page_path}/messages", kind="message", name="fee_paid")
    assert wrong.status_code == 302  # already received: said on the page, nothing written
    assert "没有在等待名为 fee_paid 的消息" in supervisor.get(page_path).get_data(as_text=True)
    assert Browser(app, "clerk").post_form(page_path, f"{page_path}/messages", kind="signal",
                                           name="hall_closed").status_code == 403


def test_a_message_matched_by_a_value_says_it_must_carry_it(deployed):
    correlated = HEAD + """<collaboration id="c"><participant id="p" processRef="read"/>
      <correlationKey name="order"><correlationPropertyRef>order_no</correlationPropertyRef></correlationKey>
      </collaboration>
      <message id="m_paid" name="fee_paid"/>
      <correlationProperty id="order_no" name="Order number">
        <correlationPropertyRetrievalExpression messageRef="m_paid"><messagePath>order_no</messagePath>
        </correlationPropertyRetrievalExpression></correlationProperty>
      <process id="read" name="Read elsewhere" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="paid"/>
      <intermediateCatchEvent id="paid" name="Fee paid"><messageEventDefinition messageRef="m_paid"/>
      </intermediateCatchEvent><sequenceFlow id="f1" sourceRef="paid" targetRef="a"/><userTask id="a" name="A"/>
      </process></definitions>"""
    _deploy(deployed, correlated.encode())
    case = _start(deployed)
    with deployed.read() as session:
        (wait,) = messages.waiting_for(session, session.get(Case, case.id))
    assert wait.carries == ("order_no",)
    with pytest.raises(InvalidInput, match="must carry order_no"):
        messages.deliver(deployed, case.case_no, "message", "fee_paid", {}, ADMIN)
    messages.deliver(deployed, case.case_no, "message", "fee_paid", {"order_no": "A-1"}, ADMIN)
    assert [i.step for i in _open(deployed, case.id)] == ["a"]


def _race() -> bytes:
    return _file("""
      <startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="gw"/><eventBasedGateway id="gw"/>
      <sequenceFlow id="f1" sourceRef="gw" targetRef="paid"/><sequenceFlow id="f2" sourceRef="gw" targetRef="late"/>
      <intermediateCatchEvent id="paid" name="Fee paid"><messageEventDefinition messageRef="m_paid"/>
      </intermediateCatchEvent>
      <intermediateCatchEvent id="late" name="Three working days"><timerEventDefinition>
        <timeDuration>P3D</timeDuration></timerEventDefinition></intermediateCatchEvent>
      <sequenceFlow id="f3" sourceRef="paid" targetRef="issue"/><userTask id="issue" name="Issue"/>
      <sequenceFlow id="f4" sourceRef="late" targetRef="chase"/><userTask id="chase" name="Chase the fee"/>""",
                 head_extra=MESSAGES)


def test_an_event_based_gateway_takes_the_message_or_its_working_time_timer(deployed, manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # a Monday
    _deploy(deployed, _race())
    paid, late = _start(deployed), _start(deployed)
    assert _case(deployed, late.id).next_timer_at == datetime(2026, 3, 5, 18, tzinfo=ZoneInfo("Asia/Shanghai"))
    with deployed.read() as session:
        assert [w.name for w in messages.waiting_for(session, session.get(Case, paid.id))] == ["fee_paid"]
    messages.deliver(deployed, paid.case_no, "message", "fee_paid", {}, ADMIN)
    assert [i.step for i in _open(deployed, paid.id)] == ["issue"]
    manual_clock.set(datetime(2026, 3, 5, 18, 1, tzinfo=ZoneInfo("Asia/Shanghai")))
    jobs.fire_timers(deployed)
    assert [i.step for i in _open(deployed, late.id)] == ["chase"]
    assert [i.step for i in _open(deployed, paid.id)] == ["issue"]  # the paid case took the other way


def test_the_bundled_processes_leave_nothing_to_infer():
    """What the import reads into a file from elsewhere (asked fields, implicit ends, a person's choice) is never
    needed by the hall's own processes: they deploy without a warning."""
    warned = {f.name: [str(w) for w in processes.check_file(f.read_bytes(), f.name).warnings]
              for f in processes.bundled_files()}
    assert len(warned) >= 15 and not any(warned.values()), warned


def test_a_paused_case_is_resumed_before_a_message_is_recorded(deployed):
    _deploy(deployed, _waiting_process())
    case = _start(deployed)
    deployed.transaction(lambda s: cases.pause(s, case.case_no, "special", "专家评审", ADMIN))
    with pytest.raises(Conflict, match="is paused; resume it"):
        messages.deliver(deployed, case.case_no, "message", "fee_paid", {}, SUPERVISOR)
    deployed.transaction(lambda s: cases.resume(s, case.case_no, ADMIN))
    messages.deliver(deployed, case.case_no, "message", "fee_paid", {}, SUPERVISOR)
