"""Who works a task of a file drawn in another modeler (issue 14, point 1): lanes, department properties,
candidate groups of Camunda, Flowable and Zeebe through the catalogue's names and aliases, named assignees,
the default department named at deploy, and the refusal that lists what was found and what exists."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from workflows.casework import cases
from workflows.definitions import processes
from workflows.errors import InvalidProcess
from workflows.models import ProcessVersion, WorkItem

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:flowable="http://flowable.org/bpmn"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://example.org">
"""


def _file(task_attrs: str = "", task_body: str = "", executable: str = "true", process_id: str = "modeled",
          lanes: str = "") -> bytes:
    return (HEAD + f"""  <bpmn:process id="{process_id}" name="Modeled elsewhere" isExecutable="{executable}">
    {lanes}
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review the request" {task_attrs}>{task_body}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
""").encode()


def _deploy(database, content: bytes, default: str | None = None):
    with database.read() as session:
        checked = processes.check_file(content, "modeled.bpmn", default, session)
    return checked, database.transaction(lambda s: processes.deploy(s, content, "modeled.bpmn", "test", checked))


@pytest.mark.parametrize("attrs, body, department", [
    ('camunda:candidateGroups="税务"', "", "tax"),  # an alias of the catalogue
    ('flowable:candidateGroups="management, Market Regulation"', "", "samr"),  # the second group, by English name
    ("", '<bpmn:extensionElements><zeebe:assignmentDefinition candidateGroups="police"/></bpmn:extensionElements>',
     "police"),  # Zeebe, by code
    ('camunda:candidateGroups="nobody-knows" camunda:assignee="housing"', "", "housing"),  # a named user's home
])
def test_the_modelers_own_attributes_name_the_department(deployed, attrs, body, department):
    checked, _ = _deploy(deployed, _file(attrs, body))
    assert checked.steps["review"].department == department


def test_a_lane_is_read_by_an_alias(deployed):
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="市场监管局"><bpmn:flowNodeRef>review</bpmn:flowNodeRef>'
             '</bpmn:lane></bpmn:laneSet>')
    checked, _ = _deploy(deployed, _file(lanes=lanes))
    assert checked.steps["review"].department == "samr"


def test_an_unmapped_task_is_refused_with_what_was_found_and_the_departments(deployed):
    with pytest.raises(InvalidProcess) as refused:
        _deploy(deployed, _file('flowable:candidateGroups="management" flowable:assignee="${initiator}"'))
    message = refused.value.message
    assert "'review' (Review the request)" in message and "candidate group 'management'" in message
    assert "samr" in message and "default department" in message
    with deployed.read() as s:
        assert s.scalar(select(ProcessVersion).where(ProcessVersion.process_key == "modeled")) is None


def test_a_default_department_takes_what_nothing_else_places_and_says_so(deployed):
    checked, result = _deploy(deployed, _file('flowable:candidateGroups="management" flowable:assignee="${initiator}"'),
                              default="window")
    assert checked.steps["review"].department == "window"
    assert any("'${initiator}' is an expression" in w for w in checked.warnings)
    assert any("'management'" in w and "default department window" in w for w in checked.warnings)
    assert result.version.assignments == {"review": {"department": "window", "assignee": None, "how": "default"}}


def test_a_named_assignee_gets_the_step_in_their_own_list(deployed):
    _deploy(deployed, _file('camunda:assignee="tax"'))
    case = deployed.transaction(lambda s: cases.start_case(
        s, "modeled", {"type": "person", "name": "张三", "id_no": "11010519491231002X"}, {}, cases.SYSTEM))
    with deployed.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id))
        assert (item.department, item.state, item.assignee) == ("tax", "claimed", "tax")


def test_a_deployed_version_keeps_who_works_it_whatever_the_aliases_become(deployed, monkeypatch):
    _deploy(deployed, _file('camunda:candidateGroups="税务"'))
    import dataclasses

    changed = dataclasses.replace(processes.catalogue(), aliases={})
    monkeypatch.setattr(processes, "catalogue", lambda: changed)  # the alias is gone: a new deploy is refused
    processes._cache.clear()
    with deployed.read() as s:
        version = s.scalar(select(ProcessVersion).where(ProcessVersion.process_key == "modeled"))
        assert processes.definition_for(version).steps["review"].department == "tax"
    with pytest.raises(InvalidProcess):
        processes.check_file(_file('camunda:candidateGroups="税务"').replace(b'"modeled"', b'"other"'), "x.bpmn")


def test_a_pool_marked_not_executable_is_explained(deployed):
    with pytest.raises(InvalidProcess) as refused:
        _deploy(deployed, _file('camunda:candidateGroups="tax"', executable="false"))
    assert 'isExecutable="false"' in refused.value.message and "'modeled' (Modeled elsewhere)" in refused.value.message
    assert "Executable" in refused.value.message


def test_a_process_without_a_user_task_deploys_and_runs_on_its_own(deployed):
    automatic = (HEAD + """  <bpmn:process id="automatic" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="compute"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>total = 1 + 2</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute"/>
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>""").encode()
    checked, _ = _deploy(deployed, automatic)
    assert checked.steps == {} and any("no user task" in w for w in checked.warnings)
    case = deployed.transaction(lambda s: cases.start_case(
        s, "automatic", {"type": "person", "name": "张三", "id_no": "11010519491231002X"}, {}, cases.SYSTEM))
    with deployed.read() as s:
        assert s.get(type(case), case.id).status == "completed"


CAMUNDA_FORM = """<bpmn:extensionElements><camunda:formData>
  <camunda:formField id="amount" label="Amount" type="long"><camunda:validation>
    <camunda:constraint name="required"/></camunda:validation></camunda:formField>
  <camunda:formField id="kind" label="Kind" type="enum"><camunda:value id="a" name="Alpha"/>
    <camunda:value id="b" name="Beta"/></camunda:formField>
  <camunda:formField id="ok" label="Approved?" type="boolean"/>
</camunda:formData></bpmn:extensionElements>"""
FLOWABLE_FORM = """<bpmn:extensionElements>
  <flowable:formProperty id="reason" name="Reason" type="string" required="true"/>
  <flowable:formProperty id="shown" name="Shown only" type="string" writable="false"/>
</bpmn:extensionElements>"""


def test_modeler_forms_become_step_fields_and_due_dates_budgets(deployed):
    checked, _ = _deploy(deployed, _file('camunda:candidateGroups="tax" camunda:dueDate="PT4H" '
                                         'camunda:formKey="embedded:app:forms/review.html"', CAMUNDA_FORM))
    fields = {f.name: f for f in checked.steps["review"].fields}
    assert (fields["amount"].type, fields["amount"].required, fields["amount"].label) == ("integer", True, "Amount")
    assert fields["kind"].choices == [("a", "Alpha"), ("b", "Beta")] and fields["ok"].type == "boolean"
    assert checked.steps["review"].budget == "PT4H"
    assert any("embedded:app:forms/review.html" in w for w in checked.warnings)
    flowable, _ = _deploy(deployed, _file('flowable:candidateGroups="tax"', FLOWABLE_FORM)
                          .replace(b'"modeled"', b'"modeled_flowable"'))
    assert [(f.name, f.required) for f in flowable.steps["review"].fields] == [("reason", True)]


def test_a_zeebe_embedded_form_is_read():
    form = ('{"components": [{"key": "amount", "label": "Amount", "type": "number", "validate": {"required": true}},'
            ' {"key": "choice", "type": "select", "values": [{"label": "Yes", "value": "y"}]},'
            ' {"type": "text", "text": "# heading"}]}')
    body = ('<bpmn:extensionElements><zeebe:formDefinition formKey="camunda-forms:bpmn:form1"/>'
            '<zeebe:assignmentDefinition candidateGroups="tax"/></bpmn:extensionElements>')
    # Camunda 8 keeps the form's JSON in the process's own extension elements
    content = _file("", body).replace(b'<bpmn:startEvent id="start">', (
        '<bpmn:extensionElements><zeebe:userTaskForm id="form1">' + form.replace("&", "&amp;").replace("<", "&lt;")
        + '</zeebe:userTaskForm></bpmn:extensionElements><bpmn:startEvent id="start">').encode())
    checked = processes.check_file(content, "z.bpmn")
    fields = {f.name: f for f in checked.steps["review"].fields}
    assert fields["amount"].type == "number" and fields["amount"].required
    assert fields["choice"].choices == [("y", "Yes")] and "heading" not in str(fields)


def test_a_process_id_of_another_file_is_refused_unless_confirmed(deployed):
    _deploy(deployed, _file('camunda:candidateGroups="tax"'))
    other = _file('camunda:candidateGroups="tax"').replace(b'name="Modeled elsewhere"', b'name="Something else"')
    checked = processes.check_file(other, "other.bpmn")
    with pytest.raises(InvalidProcess) as refused:
        deployed.transaction(lambda s: processes.deploy(s, other, "other.bpmn", "test", checked))
    assert "'modeled' belongs to another process already ('Modeled elsewhere', version 1" in refused.value.message
    assert "--as modeled" in refused.value.message
    confirmed = deployed.transaction(lambda s: processes.deploy(s, other, "other.bpmn", "test", checked,
                                                                as_key="modeled"))
    assert confirmed.version.version == 2


def test_the_deploy_command_takes_a_default_department_and_says_what_it_did(deployed, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command does the same on PostgreSQL; its database path is tested elsewhere")
    from tests.webapp.test_time_api import cli

    path = tmp_path / "approval.bpmn"
    path.write_bytes(_file('flowable:candidateGroups="management"'))
    refused = cli(db_url, "deploy", str(path))
    assert refused.returncode != 0 and "candidate group 'management'" in refused.stderr + refused.stdout
    done = cli(db_url, "deploy", "--department", "window", str(path))
    assert done.returncode == 0, done.stderr
    assert "deployed: modeled version 1 (approval.bpmn)" in done.stdout
    assert "warning:" in done.stdout and "default department window" in done.stdout
