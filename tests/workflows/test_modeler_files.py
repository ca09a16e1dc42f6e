"""Several files at once (issue 14, point 4): a main process, the process its call activity calls from another
file, and the DMN decision its business rule task takes (written the Camunda way), deployed together from the
command line, as a .zip and from the admin page; the version keeps its companions and runs the same."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.webapp.test_time_api import cli
from workflows.casework import cases
from workflows.definitions import processes
from workflows.models import ProcessVersion, WorkItem

FILES = Path(__file__).parent / "fixtures" / "multifile"
PERSON = {"type": "person", "name": "张三", "id_no": "11010519491231002X"}


def _run(database, amount: int):
    case = database.transaction(lambda s: cases.start_case(s, "fee_application", PERSON, {"amount": amount},
                                                           cases.SYSTEM))
    with database.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_id == case.id))
        return item, s.get(type(case), case.id)


def test_the_command_deploys_a_process_with_what_it_calls_and_decides(deployed, db_url):
    done = cli(db_url, "deploy", *(str(p) for p in sorted(FILES.iterdir())))
    assert done.returncode == 0, done.stderr
    assert "deployed: fee_application version 1 (main.bpmn)" in done.stdout
    assert "fee_review" not in done.stdout  # the called process travels with its caller
    with deployed.read() as s:
        version = s.scalar(select(ProcessVersion).where(ProcessVersion.process_key == "fee_application"))
        assert sorted(version.companions) == ["review.bpmn", "rules.dmn"]
    processes.forget_cached_versions()
    processes._cache.clear()  # read back from the stored files, as another process would
    item, case = _run(deployed, 1500)
    assert (item.step, item.department, item.name) == ("check", "finance", "核定收费")
    assert case.data.get("amount") == 1500
    with deployed.read() as s:
        from workflows.definitions import engine
        workflow = engine.load(s.get(type(case), case.id).state,
                               processes.definition_for(processes.cached_version(s, case.process_version_id)))
        levels = {t.data.get("level") for t in engine.ready_user_tasks(workflow)}
    assert levels == {"high"}  # the DMN table decided: 1,500 is "high"


def test_a_zip_deploys_the_same_and_a_missing_companion_is_named(deployed, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command does the same on PostgreSQL; its database path is tested elsewhere")
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in FILES.iterdir():
            z.write(path, f"models/{path.name}")
    assert "deployed: fee_application version 1" in cli(db_url, "deploy", str(archive)).stdout
    alone = cli(db_url, "deploy", str(FILES / "main.bpmn"))
    assert alone.returncode != 0 and "element 'review' (审核): calls the process 'fee_review'" in alone.stderr
    without_rules = cli(db_url, "deploy", str(FILES / "main.bpmn"), str(FILES / "review.bpmn"))
    assert "element 'classify' (定档): takes the decision 'fee_level'" in without_rules.stderr


def test_the_admin_uploads_several_files_at_once(app, deployed):
    from tests.webapp.test_pages import Browser, tokens

    admin = Browser(app, "admin")
    page = admin.get("/admin/processes").get_data(as_text=True)
    data = {**tokens(page), "file": [(io.BytesIO(p.read_bytes()), p.name) for p in sorted(FILES.iterdir())]}
    r = admin.client.post("/admin/processes", data=data, content_type="multipart/form-data", follow_redirects=True)
    assert "已部署「收费申请」第 1 版" in r.get_data(as_text=True)
    item, _ = _run(deployed, 10)
    assert item.department == "finance"



def test_several_files_deploy_all_or_none(app, deployed):
    """One broken file in an upload of several: nothing is deployed, the good files neither (no half-written
    deploy), and the page names the broken element."""
    from tests.webapp.test_pages import Browser, tokens

    broken = COLLABORATION.replace('<bpmn:sequenceFlow id="i2" sourceRef="i_task" targetRef="i_end"/>',
                                   '<bpmn:sequenceFlow id="i2" sourceRef="i_task" targetRef="i_end">'
                                   '<bpmn:conditionExpression>${bean.check()}</bpmn:conditionExpression>'
                                   '</bpmn:sequenceFlow>')
    admin = Browser(app, "admin")
    page = admin.get("/admin/processes").get_data(as_text=True)
    files = [(io.BytesIO(p.read_bytes()), p.name) for p in sorted(FILES.iterdir())]
    data = {**tokens(page), "file": [*files, (io.BytesIO(broken.encode()), "collab.bpmn")]}
    r = admin.client.post("/admin/processes", data=data, content_type="multipart/form-data")
    assert r.status_code == 400 and "连线「i2」" in r.get_data(as_text=True)
    with deployed.read() as s:
        keys = set(s.scalars(select(ProcessVersion.process_key)))
    assert not keys & {"fee_application", "apply", "inspect"}  # the good files were not deployed either


COLLABORATION = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="c" targetNamespace="x">
  <bpmn:collaboration id="collab">
    <bpmn:participant id="p1" name="申报" processRef="apply" />
    <bpmn:participant id="p2" name="核查" processRef="inspect" />
  </bpmn:collaboration>
  <bpmn:process id="apply" name="企业申报" isExecutable="true">
    <bpmn:startEvent id="a_start"><bpmn:outgoing>a1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="a_task" name="申报审核" camunda:candidateGroups="tax"><bpmn:incoming>a1</bpmn:incoming>
      <bpmn:outgoing>a2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="a_end"><bpmn:incoming>a2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="a1" sourceRef="a_start" targetRef="a_task"/>
    <bpmn:sequenceFlow id="a2" sourceRef="a_task" targetRef="a_end"/>
  </bpmn:process>
  <bpmn:process id="inspect" name="现场核查" isExecutable="true">
    <bpmn:startEvent id="i_start"><bpmn:outgoing>i1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="i_task" name="核查" camunda:candidateGroups="samr"><bpmn:incoming>i1</bpmn:incoming>
      <bpmn:outgoing>i2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="i_end"><bpmn:incoming>i2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="i1" sourceRef="i_start" targetRef="i_task"/>
    <bpmn:sequenceFlow id="i2" sourceRef="i_task" targetRef="i_end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_each_executable_pool_of_a_collaboration_deploys_as_a_process(deployed, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command does the same on PostgreSQL; its database path is tested elsewhere")
    path = tmp_path / "collaboration.bpmn"
    path.write_text(COLLABORATION, encoding="utf-8")
    done = cli(db_url, "deploy", str(path))
    assert done.returncode == 0, done.stderr
    assert "deployed: apply version 1" in done.stdout and "deployed: inspect version 1" in done.stdout
    processes._cache.clear()
    for key, department in (("apply", "tax"), ("inspect", "samr")):
        case = deployed.transaction(lambda s, k=key: cases.start_case(s, k, PERSON, {}, cases.SYSTEM))
        with deployed.read() as s:
            assert s.scalar(select(WorkItem.department).where(WorkItem.case_id == case.id)) == department
