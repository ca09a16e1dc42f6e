"""会签 / 或签 / 票签: a multi-instance user task gives one work item per element of a collection —
departments or people — each with its own clock and record; it completes when all sign, when one does,
or when a stated share approves; one 不同意 can end it early (issue 12)."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest

from workflows.definitions.processes import deploy


def countersign(key: str, signers: str, condition: str | None = None) -> bytes:
    completion = f"<bpmn:completionCondition>{escape(condition)}</bpmn:completionCondition>" if condition else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d_{key}" targetNamespace="t">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="w" name="综合窗口">
      <bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>accept</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>who</bpmn:flowNodeRef><bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="x" name="政务服务监管局"><bpmn:flowNodeRef>sign</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="accept" name="受理审查"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="who" name="会签单位"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>signers = {signers}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="sign" name="会签">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="budget" value="PT4H" />
        <spiffworkflow:property name="role" value="reviewer" />
        <spiffworkflow:property name="field:opinion" value="choice(agree:同意,disagree:不同意) required" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopDataInputRef>signers</bpmn:loopDataInputRef>
        <bpmn:loopDataOutputRef>opinions</bpmn:loopDataOutputRef>
        <bpmn:inputDataItem id="signer" name="signer" />
        <bpmn:outputDataItem id="opinion" name="opinion" />
        {completion}
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="accept" />
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="who" />
    <bpmn:sequenceFlow id="f3" sourceRef="who" targetRef="sign" />
    <bpmn:sequenceFlow id="f4" sourceRef="sign" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>""".encode()


DEPARTMENTS = "['samr', 'police', 'tax']"
USERS = {"samr": "samr", "police": "police", "tax": "tax"}


def _start(api, deployed, key, signers=DEPARTMENTS, condition=None):
    deployed.transaction(lambda s: deploy(s, countersign(key, signers, condition), f"{key}.bpmn"))
    case_no = api.start(key)["case_no"]
    api.complete(api.open_items(case_no)["accept"], "clerk", {})
    items = [i for i in api.get(f"/cases/{case_no}").get_json()["open_items"] if i["step"] == "sign"]
    return case_no, {i["department"]: i for i in items}


def _sign(api, item, opinion):
    r = api.post(f"/work-items/{item['id']}/complete", USERS[item["department"]],
                 json={"data": {"opinion": opinion}})
    assert r.status_code == 200, r.get_json()


def test_countersign_all_departments_each_with_its_own_item_clock_and_record(api, deployed):
    case_no, items = _start(api, deployed, "cs_all")
    assert sorted(items) == ["police", "samr", "tax"]
    assert all(i["budget"] == "PT4H" and "（" in i["name"] for i in items.values())
    clocks = [c for c in api.get(f"/cases/{case_no}").get_json()["clocks"] if c["scope"] == "step"]
    assert len(clocks) == 3  # each instance has its own clock
    _sign(api, items["samr"], "agree")
    _sign(api, items["police"], "agree")
    assert api.get(f"/cases/{case_no}").get_json()["status"] == "in_progress"  # waits for the third
    _sign(api, items["tax"], "agree")
    done = api.get(f"/cases/{case_no}").get_json()
    assert done["status"] == "completed"
    assert sorted(i["data"]["opinion"] for i in done["done_items"] if i["step"] == "sign") == ["agree"] * 3


@pytest.mark.parametrize("key, condition, opinions, cancelled", [
    ("cs_any", "True", ["agree"], 2),                                          # 或签: one signs
    ("cs_two_thirds", "done.count('agree') >= 2", ["agree", "agree"], 1),      # 票签: 2 of 3 approve
    ("cs_veto", "opinion == 'disagree' or done.count('agree') >= 2", ["disagree"], 2),  # one 不同意 ends it
])
def test_or_sign_share_and_veto(api, deployed, key, condition, opinions, cancelled):
    case_no, items = _start(api, deployed, key, condition=condition)
    order = ["samr", "police", "tax"]
    for department, opinion in zip(order, opinions, strict=False):
        _sign(api, items[department], opinion)
    detail = api.get(f"/cases/{case_no}").get_json()
    assert detail["status"] == "completed" and detail["open_items"] == []
    reasons = [e["after"]["reason"] for e in detail["history"] if e["action"] == "work_item.cancelled"]
    assert len(reasons) == cancelled


def test_countersign_by_named_people(api, deployed):
    from tests.conftest import DEMO_PASSWORD
    from workflows.administration import users

    deployed.transaction(lambda s: users.add_user(s, "zhang", "reviewer", DEMO_PASSWORD, "samr"))
    deployed.transaction(lambda s: users.add_user(s, "li", "reviewer", DEMO_PASSWORD, "tax"))
    case_no, items = _start(api, deployed, "cs_people", signers="['zhang', 'li']")
    assert {i["assignee"] for i in items.values()} == {"zhang", "li"}  # claimed by the people named
    assert {i["department"] for i in items.values()} == {"samr", "tax"}
    for item in items.values():
        r = api.post(f"/work-items/{item['id']}/complete", item["assignee"], json={"data": {"opinion": "agree"}})
        assert r.status_code == 200, r.get_json()
    assert api.get(f"/cases/{case_no}").get_json()["status"] == "completed"
