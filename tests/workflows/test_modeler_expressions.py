"""JUEL and FEEL in the stated subset become Python the sandbox runs; anything else is refused at deploy,
quoting the expression and naming the flow; timers, scripts and service tasks written for other engines."""

from __future__ import annotations

import pytest

from workflows.definitions import processes
from workflows.definitions.modeling import expressions
from workflows.definitions.scripting import evaluate
from workflows.errors import InvalidProcess


@pytest.mark.parametrize("source, data, expected", [
    ("${amount > 1000 && approved}", {"amount": 1500, "approved": True}, True),
    ("${amount gt 1000 and !approved}", {"amount": 1500, "approved": True}, False),
    ("#{decision eq 'accept'}", {"decision": "accept"}, True),
    ("${empty comment}", {"comment": ""}, True),
    ("${not empty comment}", {"comment": "ok"}, True),
    ("${order.total >= 100}", {"order": {"total": 120}}, True),
    ("${execution.getVariable(\"x\") == null}", {"x": None}, True),
    ("${(a + b) * 2 div 4 == 3}", {"a": 1, "b": 5}, True),
    ("${n mod 2 ne 0}", {"n": 3}, True),
    ("= amount > 1000 and approved", {"amount": 10, "approved": True}, False),
    ('= decision = "accept"', {"decision": "accept"}, True),
    ("= not(approved)", {"approved": False}, True),
    ("= count(items) >= 2", {"items": [1, 2]}, True),
    ('= string length(name) = 3 and starts with(name, "张")', {"name": "张三丰"}, True),
    ('= contains(upper case(code), "AB")', {"code": "xab"}, True),
    ("amount > 5", {"amount": 6}, True),  # Python stays as it is
])
def test_the_subset_translates_and_runs_in_the_sandbox(source, data, expected):
    assert evaluate(expressions.translate(source), data) is expected


@pytest.mark.parametrize("source, why", [
    ("${order.getTotal() > 1}", "getTotal"),
    ("${a ? b : c}", "cannot read"),
    ("${x = 1}", "'=' assigns"),
    ("= for x in xs return x", "not a variable"),
    ("${__class__}", "not a variable"),
    ("= sum(items) > 1", "sum() is not in the supported subset"),
])
def test_outside_the_subset_is_unsupported_with_the_reason(source, why):
    with pytest.raises(expressions.Unsupported) as refused:
        expressions.translate(source)
    assert why in str(refused.value)


def _process(condition: str, timer: str = "", script_format: str = "", service: str = "") -> bytes:
    timer_xml = (f'<bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f0</bpmn:incoming>'
                 f'<bpmn:outgoing>f1</bpmn:outgoing><bpmn:timerEventDefinition><bpmn:timeDuration>{timer}'
                 f'</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
                 '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="wait"/>') if timer else \
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="work"/>'
    first = "wait" if timer else "work"
    script = (f'<bpmn:scriptTask id="work" name="Work" scriptFormat="{script_format}"><bpmn:incoming>'
              f'{"f1" if timer else "f0"}</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
              '<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>') if not service else (
        f'<bpmn:serviceTask id="work" name="Work" {service}><bpmn:incoming>{"f1" if timer else "f0"}</bpmn:incoming>'
        '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  id="d" targetNamespace="x">
  <bpmn:process id="rewritten" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    {timer_xml}
    {script}
    {'<bpmn:sequenceFlow id="f1" sourceRef="wait" targetRef="work"/>' if timer else ''}
    <bpmn:exclusiveGateway id="gw" default="f4"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:outgoing>f4</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="yes"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="no"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="gw"/>
    <bpmn:sequenceFlow id="f3" name="Large" sourceRef="gw" targetRef="yes">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="no"/>
  </bpmn:process>
</bpmn:definitions>""".replace(f'targetRef="{first}"/>\n', f'targetRef="{first}"/>\n', 1).encode()


def test_a_juel_condition_deploys_as_python():
    definition = processes.check_file(_process("${x &gt; 0 &amp;&amp; x lt 5}"), "x.bpmn")
    conditions = [cond.args[0] for cond, _target in definition.spec.task_specs["gw"].cond_task_specs if cond]
    assert conditions == ["x > 0 and x < 5"]


def test_an_expression_outside_the_subset_is_refused_naming_the_flow_and_quoting_it():
    with pytest.raises(InvalidProcess) as refused:
        processes.check_file(_process("${bean.isLarge(x)}"), "x.bpmn")
    message = refused.value.message
    assert "sequence flow 'f3' (Large)" in message and "'${bean.isLarge(x)}'" in message
    assert refused.value.details["element"] == "f3"


@pytest.mark.parametrize("written, read, warned", [("PT5M", "'PT5M'", False), ("PT1S", "'PT1M'", True),
                                                   ("PT0.05S", "'PT1M'", True), ('"PT2H"', "'PT2H'", False),
                                                   ("P1DT2H", "'PT600M'", True)])
def test_timers_written_the_camunda_way_are_working_time_durations(written, read, warned):
    definition = processes.check_file(_process("x > 0", timer=written), "x.bpmn")
    assert definition.spec.task_specs["wait"].event_definition.expression == read
    assert any("working minute" in w for w in definition.warnings) is warned


def test_a_groovy_script_and_a_java_service_task_are_refused_with_what_to_do():
    with pytest.raises(InvalidProcess) as refused:
        processes.check_file(_process("x > 0", script_format="groovy"), "x.bpmn")
    assert "script task 'work' (Work)" in refused.value.message and "Python" in refused.value.message
    with pytest.raises(InvalidProcess) as refused:
        processes.check_file(_process("x > 0", service='camunda:class="org.example.Mailer"'), "x.bpmn")
    assert "Java class 'org.example.Mailer' (camunda:class)" in refused.value.message
    assert "script task" in refused.value.message
    plain = processes.check_file(_process("x > 0", service=""), "x.bpmn")
    assert plain.key == "rewritten"


FLOWABLE_STYLE = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="http://www.flowable.org/processdef">
  <process id="leave" name="请假" isExecutable="true">
    <startEvent id="start"/>
    <userTask id="approve" name="审批" flowable:candidateGroups="税务">
      <extensionElements><flowable:formProperty id="decision" name="意见" type="enum" required="true">
        <flowable:value id="agree" name="同意"/><flowable:value id="reject" name="驳回"/></flowable:formProperty>
      </extensionElements></userTask>
    <userTask id="record" name="登记" flowable:candidateGroups="tax"/>
    <endEvent id="done"/>
    <endEvent id="rejected"/>
    <sequenceFlow id="s1" sourceRef="start" targetRef="approve"/>
    <sequenceFlow id="agreed" name="同意" sourceRef="approve" targetRef="record">
      <conditionExpression xsi:type="tFormalExpression">${decision == 'agree'}</conditionExpression></sequenceFlow>
    <sequenceFlow id="refused" name="驳回" sourceRef="approve" targetRef="rejected">
      <conditionExpression xsi:type="tFormalExpression">${decision == 'reject'}</conditionExpression></sequenceFlow>
    <sequenceFlow id="s4" sourceRef="record" targetRef="done"/>
  </process>
</definitions>"""


@pytest.mark.parametrize("decision, next_step", [("agree", "record"), ("reject", None)])
def test_conditional_flows_leaving_a_task_run_as_bpmn_means(deployed, decision, next_step):
    from sqlalchemy import select

    from workflows.casework import cases
    from workflows.models import Case, WorkItem

    content = FLOWABLE_STYLE.encode()
    checked = processes.check_file(content, "leave.bpmn20.xml")
    assert any("implicit inclusive gateway" in w for w in checked.warnings)
    deployed.transaction(lambda s: processes.deploy(s, content, "leave.bpmn20.xml", "test", checked))
    case = deployed.transaction(lambda s: cases.start_case(
        s, "leave", {"type": "person", "name": "张三", "id_no": "11010519491231002X"}, {}, cases.SYSTEM))
    admin = cases.Actor("admin", "admin", None)
    with deployed.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id))
    assert (item.step, item.department) == ("approve", "tax")
    deployed.transaction(lambda s: cases.complete(s, item.id, admin, {"decision": decision}))
    with deployed.read() as s:
        open_steps = [i.step for i in s.scalars(select(WorkItem).where(
            WorkItem.case_id == case.id, WorkItem.state.in_(cases.OPEN_STATES)))]
        status = s.get(Case, case.id).status
    assert open_steps == ([next_step] if next_step else []) and status == ("in_progress" if next_step else "completed")


COUNTERSIGN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  id="d" targetNamespace="x">
  <bpmn:process id="countersign" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="choose" scriptFormat="python">
      <bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing>
      <bpmn:script>approvers = ["tax", "samr"]</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="sign" name="会签" camunda:candidateGroups="window"><bpmn:incoming>s2</bpmn:incoming>
      <bpmn:outgoing>s3</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics camunda:collection="${approvers}" camunda:elementVariable="approver"/>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>s3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s1" sourceRef="start" targetRef="choose"/>
    <bpmn:sequenceFlow id="s2" sourceRef="choose" targetRef="sign"/>
    <bpmn:sequenceFlow id="s3" sourceRef="sign" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_multi_instance_by_a_camunda_collection_gives_one_item_per_element(deployed):
    from sqlalchemy import select

    from workflows.casework import cases
    from workflows.models import Case, WorkItem

    content = COUNTERSIGN.encode()
    checked = processes.check_file(content, "countersign.bpmn")
    deployed.transaction(lambda s: processes.deploy(s, content, "countersign.bpmn", "test", checked))
    case = deployed.transaction(lambda s: cases.start_case(
        s, "countersign", {"type": "person", "name": "张三", "id_no": "11010519491231002X"}, {}, cases.SYSTEM))
    with deployed.read() as s:
        items = s.scalars(select(WorkItem).where(WorkItem.case_id == case.id).order_by(WorkItem.id)).all()
    assert sorted(i.department for i in items) == ["samr", "tax"]
    admin = cases.Actor("admin", "admin", None)
    for item in items:
        deployed.transaction(lambda s, i=item.id: cases.complete(s, i, admin, {}))
    with deployed.read() as s:
        assert s.get(Case, case.id).status == "completed"
    with pytest.raises(InvalidProcess) as refused:
        processes.check_file(content.replace(b"${approvers}", b"${loader.list()}"), "bad.bpmn")
    assert "multi-instance collection" in refused.value.message


def test_a_file_without_layout_is_drawn_left_to_right():
    import re

    from workflows.definitions.diagram import render_svg

    svg = render_svg(FLOWABLE_STYLE)  # no BPMNDiagram at all
    boxes = re.findall(r'<g class="waiting" data-id="(\w+)"><rect class="node" x="([\d.]+)" y="([\d.]+)"', svg)
    at = {ref: (float(x), float(y)) for ref, x, y in boxes}
    assert set(at) == {"approve", "record"}
    assert at["approve"][0] < at["record"][0]  # the flow reads left to right
    assert svg.count('<polyline class="edge"') == 4 and "审批" in svg and 'width="10"' not in svg


def test_a_gateway_deciding_on_an_undeclared_variable_asks_for_it_in_the_step_before():
    without_form = FLOWABLE_STYLE.replace(
        """<extensionElements><flowable:formProperty id="decision" name="意见" type="enum" required="true">
        <flowable:value id="agree" name="同意"/><flowable:value id="reject" name="驳回"/></flowable:formProperty>
      </extensionElements>""", "")
    assert "formProperty" not in without_form
    checked = processes.check_file(without_form.encode(), "leave.bpmn20.xml")
    fields = {f.name: f for f in checked.steps["approve"].fields}
    assert fields["decision"].type == "choice" and fields["decision"].options == ("agree", "reject")
    assert fields["decision"].required
    assert any("decides on 'decision', which no form declares" in w for w in checked.warnings)
