"""Deploying processes: versions only on change, old cases stay on their version, bad files refused whole."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import CLERK, COMPANY
from workflows.casework import cases
from workflows.definitions import processes
from workflows.definitions.processes import bundled_files, deploy
from workflows.errors import InvalidProcess
from workflows.models import ProcessVersion

COMPANY_SETUP = next(p for p in bundled_files() if p.name == "company_setup.bpmn").read_bytes()


def _versions(database, key="company_setup") -> int:
    with database.read() as s:
        return s.scalar(select(func.count()).select_from(ProcessVersion).where(ProcessVersion.process_key == key))


def test_unchanged_file_creates_no_version_and_changed_one_does(database):
    first = database.transaction(lambda s: deploy(s, COMPANY_SETUP, "company_setup.bpmn"))
    again = database.transaction(lambda s: deploy(s, COMPANY_SETUP, "company_setup.bpmn"))
    assert first.created and not again.created and again.version.id == first.version.id
    changed = COMPANY_SETUP.replace(b'value="catalogue" />\n          <spiffworkflow:property name="field:seal_no"',
                                    b'value="PT2H" />\n          <spiffworkflow:property name="field:seal_no"')
    assert changed != COMPANY_SETUP
    second = database.transaction(lambda s: deploy(s, changed, "company_setup.bpmn"))
    assert second.created and second.version.version == 2
    assert _versions(database) == 2


def test_a_running_case_finishes_on_its_old_version(database):
    database.transaction(lambda s: deploy(s, COMPANY_SETUP, "company_setup.bpmn"))
    old = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    # version 2 renames the seal step
    changed = COMPANY_SETUP.replace("印章刻制".encode(), "公章刻制".encode())
    database.transaction(lambda s: deploy(s, changed, "company_setup.bpmn"))
    new = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    with database.read() as s:
        assert s.get(type(old), old.id).process_version.version == 1
        assert s.get(type(new), new.id).process_version.version == 2

    admin = cases.SYSTEM

    def work_through(case_id):
        from workflows.models import WorkItem
        names = []
        for _ in range(10):
            with database.read() as s:
                items = s.scalars(select(WorkItem).where(WorkItem.case_id == case_id,
                                                         WorkItem.state == "open")).all()
            if not items:
                return names
            for item in items:
                names.append(item.name)
                data = {"accept": {"decision": "accept"}, "registration": {"approval": "approve", "license_no": "L"},
                        "seal": {"seal_no": "S"}, "invoice": {"taxpayer_no": "T"},
                        "deliver": {"delivery_method": "window"}}[item.step]
                database.transaction(lambda s, i=item.id, d=data: cases.complete(s, i, admin, d))
        raise AssertionError("case did not finish")

    assert "印章刻制" in work_through(old.id)
    assert "公章刻制" in work_through(new.id)
    with database.read() as s:
        assert {c.status for c in (s.get(type(old), old.id), s.get(type(new), new.id))} == {"completed"}


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&xxe;" isExecutable="true"/>
</bpmn:definitions>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&lol4;" isExecutable="true"/>
</bpmn:definitions>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x"/>"""


def _script_process(script: str) -> bytes:
    text = COMPANY_SETUP.decode()
    task = ('<bpmn:scriptTask id="evil" name="evil"><bpmn:incoming>Flow_start_evil</bpmn:incoming>'
            '<bpmn:outgoing>Flow_evil_accept</bpmn:outgoing>'
            f'<bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'
            '<bpmn:sequenceFlow id="Flow_start_evil" sourceRef="start" targetRef="evil" />'
            '<bpmn:sequenceFlow id="Flow_evil_accept" sourceRef="evil" targetRef="accept" />')
    text = text.replace('<bpmn:sequenceFlow id="Flow_start_accept" sourceRef="start" targetRef="accept" />', task)
    text = text.replace("<bpmn:outgoing>Flow_start_accept</bpmn:outgoing>",
                        "<bpmn:outgoing>Flow_start_evil</bpmn:outgoing>")
    text = text.replace("<bpmn:incoming>Flow_start_accept</bpmn:incoming>",
                        "<bpmn:incoming>Flow_evil_accept</bpmn:incoming>")
    text = text.replace('bpmnElement="Flow_start_accept"', 'bpmnElement="Flow_evil_accept"')
    return text.encode()


@pytest.mark.parametrize("content, reason", [
    (XXE, "DOCTYPE"), (LAUGHS, "DOCTYPE"), (EXTERNAL_DTD, "DOCTYPE"),
    (b"<not-closed>", "not well-formed"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (COMPANY_SETUP.replace(b'name="budget" value="catalogue"', b'name="budget" value="three hours"'), "registration"),
    (COMPANY_SETUP.replace('name="市场监督管理局"'.encode(), 'name="无此部门"'.encode()), "registration"),
    (COMPANY_SETUP.replace(b'field:license_no" value="string"', b'field:license_no" value="blob"'),
     "registration"),
    (COMPANY_SETUP.replace(b'targetRef="seal"', b'targetRef="nowhere"'), "nowhere"),
    (COMPANY_SETUP.replace(b"decision == 'refuse'", b"__import__('os').system('id')"), "gw_accept"),
    (_script_process("import os"), "evil"),
    (_script_process("x = ().__class__.__bases__[0].__subclasses__()"), "evil"),
])
def test_broken_or_hostile_files_are_refused_and_nothing_is_stored(database, content, reason):
    with pytest.raises(InvalidProcess) as refused:
        database.transaction(lambda s: deploy(s, content, "upload.bpmn"))
    assert reason in refused.value.message
    assert _versions(database, "company_setup") == 0 and _versions(database, "p") == 0


def test_refusal_names_the_element(database):
    broken = COMPANY_SETUP.replace(b'name="budget" value="catalogue"', b'name="budget" value="P1DT3H"')
    with pytest.raises(InvalidProcess) as refused:
        database.transaction(lambda s: deploy(s, broken, "company_setup.bpmn"))
    assert refused.value.details["element"] in ("registration", "seal")


def test_scripts_run_restricted_at_run_time(database):
    """A script that compiles under RestrictedPython still cannot reach files or builtins it is not given."""
    content = _script_process("result = sum([1, 2, 3])")
    database.transaction(lambda s: deploy(s, content, "company_setup.bpmn"))
    case = database.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
    from workflows.definitions import engine
    with database.read() as s:
        wf = engine.load(s.get(type(case), case.id).state, processes.definition_for(
            s.get(type(case), case.id).process_version))
    assert wf.get_tasks(spec_name="evil")[0].data["result"] == 6

    # a function the sandbox does not have is refused at deploy, naming it (the sandbox stops it at run time too:
    # tests/workflows/test_isolation.py)
    hostile = _script_process("x = open('/etc/passwd').read()")
    with pytest.raises(InvalidProcess, match=r"the script calls open\(\)"):
        database.transaction(lambda s: deploy(s, hostile, "company_setup.bpmn"))
