"""`onewindow check`: the running cases and those changed lately by default, every case with --all,
read in batches."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select, update

from tests.workflows.test_statistics import History, at
from workflows.models import WorkItem
from workflows.oversight.integrity import problems


def test_check_scope_and_batches(deployed, db_url, manual_clock):
    h = History(deployed)
    finished = h.company_case(at(2, 9), at(2, 10), at(2, 11))
    h.move(at(20, 9))
    running = h.start("company_setup")
    h.work(running, "accept")

    # a finished case whose delivered step shows as open again (as a torn write would leave it)
    deployed.transaction(lambda s: s.execute(update(WorkItem).where(
        WorkItem.case_no == finished, WorkItem.step == "deliver").values(state="open")))
    with deployed.read() as s:
        since = at(19, 9)
        counted: list[int] = []
        assert list(problems(s, since=since, everything=False, checked=counted)) == [] and counted == [1]
        counted = []
        found = list(problems(s, batch=1, checked=counted))
        assert counted == [2] and len(found) == 1 and found[0].startswith(f"{finished}: ready tasks []")
        assert s.scalars(select(WorkItem.case_no).where(WorkItem.state == "open")).all()  # nothing changed

    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_CLOCK": "manual"}

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "webapp.cli", "check", *args], env=env, capture_output=True,
                             text=True, timeout=120)
        return out.returncode, out.stdout + out.stderr

    code, text = cli()
    assert code == 0 and "1 cases consistent (running cases and cases changed since 2026-03-18 09:00)" in text
    code, text = cli("--all")
    assert code == 2 and finished in text and "1 problem(s) found in 2 cases (all cases)" in text
    code, text = cli("--days", "30")
    assert code == 2 and "1 problem(s) found in 2 cases" in text


DEADLOCK = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="deadlock" name="deadlock" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l" name="综合窗口">
      <bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>gw</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>accept</bpmn:flowNodeRef><bpmn:flowNodeRef>join</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="gw" default="f2"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="accept" name="受理审查"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:parallelGateway id="join"><bpmn:incoming>f3</bpmn:incoming><bpmn:incoming>f4</bpmn:incoming>
      <bpmn:outgoing>f5</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="e"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="gw" />
    <bpmn:sequenceFlow id="f2" sourceRef="gw" targetRef="accept" />
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="join">
      <bpmn:conditionExpression>False</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="accept" targetRef="join" />
    <bpmn:sequenceFlow id="f5" sourceRef="join" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>'''


def test_check_flags_a_stuck_case(deployed):
    """A parallel join that waits for a flow the exclusive gateway never took: running, nothing open,
    nothing to wait for — `check` calls it stuck; a case waiting at its timer is not."""
    from tests.conftest import CLERK, COMPANY
    from workflows.casework import cases
    from workflows.definitions.processes import deploy

    deployed.transaction(lambda s: deploy(s, DEADLOCK.encode(), "deadlock.bpmn"))
    case = deployed.transaction(lambda s: cases.start_case(s, "deadlock", COMPANY, {}, CLERK))
    with deployed.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id))
        assert list(problems(s)) == []  # waiting for the clerk is not stuck
    cases.complete_step(deployed, item.id, CLERK, {})
    with deployed.read() as s:
        found = list(problems(s))
    assert len(found) == 1 and found[0].startswith(f"{case.case_no}: stuck")
