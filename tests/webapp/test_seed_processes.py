"""Each seed process from intake to delivery through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import PERSON


def accept(api, case_no):
    items = api.open_items(case_no)
    assert list(items) == ["accept"]
    api.complete(items["accept"], "clerk", {"decision": "accept"})


def test_company_setup_parallel_branches_to_delivery(api):
    case = api.start("company_setup")
    assert case["status"] == "received"
    assert case["case_no"].startswith("20") and "QYKB" in case["case_no"]
    assert len(case["query_code"]) == 8
    assert case["budget"] == "PT8H"
    accept(api, case["case_no"])

    items = api.open_items(case["case_no"])
    assert sorted(items) == ["invoice", "registration", "seal"]
    assert {s: (i["department"], i["role"], i["budget"]) for s, i in items.items()} == {
        "registration": ("samr", "reviewer", "PT3H"),
        "seal": ("police", "reviewer", "PT3H"),
        "invoice": ("tax", "reviewer", "PT1H30M"),
    }
    # the three departments each see their own item in their queue, side by side
    for username, step in (("samr", "registration"), ("police", "seal"), ("tax", "invoice")):
        listed = api.get("/work-items?state=open", username).get_json()["items"]
        assert [i["step"] for i in listed if i["case_no"] == case["case_no"]] == [step]

    api.complete(items["seal"], "police", {"seal_no": "SEAL-001"})
    api.complete(items["invoice"], "tax", {"taxpayer_no": "91350100M000100Y43", "invoices_issued": 25})
    assert sorted(api.open_items(case["case_no"])) == ["registration"]
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "LIC-42", "opinion": "准予设立"})

    items = api.open_items(case["case_no"])
    assert list(items) == ["deliver"]
    api.complete(items["deliver"], "clerk", {"delivery_method": "window"})

    done = api.get(f"/cases/{case['case_no']}").get_json()
    assert done["status"] == "completed" and done["outcome"] == "approved"
    assert done["open_items"] == []
    assert sorted(i["step"] for i in done["done_items"]) == ["accept", "deliver", "invoice", "registration", "seal"]
    assert {i["step"]: i["completed_by"] for i in done["done_items"]} == {
        "accept": "clerk", "seal": "police", "invoice": "tax", "registration": "samr", "deliver": "clerk"}
    assert done["data"]["license_no"] == "LIC-42" and done["data"]["seal_no"] == "SEAL-001"
    actions = [e["action"] for e in done["history"]]
    assert actions[0] == "case.started" and actions.count("work_item.completed") == 5
    last = done["history"][-1]
    assert last["before"]["open_steps"] == ["deliver"] and last["after"]["status"] == "completed"


def test_company_setup_rejected_by_registration_ends_the_case_and_cancels_the_parallel_steps(api):
    case = api.start("company_setup")
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    r = api.post(f"/work-items/{items['registration']['id']}/complete", "samr", json={"data": {"opinion": "x"}})
    assert r.status_code == 400 and "approval" in r.get_json()["message"]
    api.post(f"/work-items/{items['seal']['id']}/claim", "police")
    api.complete(items["registration"], "samr", {"approval": "reject", "opinion": "经营范围涉及前置许可"})
    done = api.get(f"/cases/{case['case_no']}").get_json()
    assert (done["status"], done["outcome"]) == ("completed", "rejected")
    assert done["open_items"] == []
    # the claimed seal step and the open invoice step are cancelled, each recorded in the history
    cancelled = {e["step"]: e for e in done["history"] if e["action"] == "work_item.cancelled"}
    assert set(cancelled) == {"seal", "invoice"}
    assert cancelled["seal"]["before"]["assignee"] == "police"
    assert all(e["after"]["reason"] == "case ended" for e in cancelled.values())
    stopped = next(e for e in done["history"] if e["action"] == "clocks.stopped")
    assert stopped["after"]["clocks"] == ["case:"]
    r = api.post(f"/work-items/{items['seal']['id']}/complete", "police", json={"data": {"seal_no": "S"}})
    assert r.status_code == 409 and "cancelled" in r.get_json()["message"]
    clocks = api.get(f"/cases/{case['case_no']}").get_json().get("clocks")
    if clocks is not None:
        assert all(c["state"] not in ("running", "warned", "breached", "paused") for c in clocks)


def test_company_setup_refused_at_the_window(api):
    case = api.start("company_setup")
    items = api.open_items(case["case_no"])
    api.complete(items["accept"], "clerk", {"decision": "refuse", "reason": "名称不符合规定"})
    done = api.get(f"/cases/{case['case_no']}").get_json()
    assert done["status"] == "refused" and done["outcome"] == "refused" and done["open_items"] == []


@pytest.mark.parametrize("project_type, total, stage1", [
    ("government", "P80D", "P20D"), ("general_social", "P65D", "P17D"),  # Mianyang (the default region)
    ("small_social", "P45D", "P12D"), ("industrial_park", "P30D", "P7D"),
])
def test_construction_permit_budget_by_project_type(api, project_type, total, stage1):
    case = api.start("construction_permit", {"project_type": project_type, "project_name": "示例厂房"})
    assert case["budget"] == total
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    assert sorted(items) == ["land_planning", "ndrc_approval"]
    assert {i["budget"] for i in items.values()} == {stage1}


def test_construction_permit_four_stages_in_order(api):
    case = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})
    case_no = case["case_no"]
    accept(api, case_no)
    stages = [
        {"ndrc_approval": ("ndrc", {"approval_no": "A1"}), "land_planning": ("nrp", {"permit_no": "P1"})},
        {"planning_permit": ("nrp", {"permit_no": "P2"}), "design_review": ("housing", {"review_no": "R1"})},
        {"construction_license": ("housing", {"license_no": "L1"}),
         "fire_design": ("housing", {"review_no": "F1"})},
        {"joint_acceptance": ("housing", {"acceptance_no": "J1"}),
         "planning_verification": ("nrp", {"verification_no": "V1"}),
         "archive": ("housing", {"archive_no": "AR1"})},
    ]
    for stage in stages:
        items = api.open_items(case_no)
        assert sorted(items) == sorted(stage), "a stage starts only when the one before is done"
        for step, (user, data) in stage.items():
            assert items[step]["department"] == user
            api.complete(items[step], user, data)
    items = api.open_items(case_no)
    assert list(items) == ["deliver"]
    api.complete(items["deliver"], "clerk", {"delivery_method": "mail"})
    assert api.get(f"/cases/{case_no}").get_json()["status"] == "completed"


@pytest.mark.parametrize("kind, budget", [("general", "P2D"), ("mortgage", "P1D"),
                                          ("company_nonresidential_transfer", "P1D")])
def test_property_registration_parallel_kinds(api, kind, budget):
    case = api.start("property_registration", {"registration_kind": kind}, **PERSON)
    assert case["budget"] == budget
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    assert sorted(items) == ["registration", "tax", "transaction"]
    assert {i["budget"] for i in items.values()} == {budget}
    api.complete(items["transaction"], "housing", {"contract_no": "HT-1"})
    api.complete(items["tax"], "tax", {"tax_paid": True})
    api.complete(items["registration"], "nrp", {"certificate_no": "川(2026)绵阳市不动产权第0000001号"})
    items = api.open_items(case["case_no"])
    api.complete(items["deliver"], "clerk", {"delivery_method": "electronic"})
    assert api.get(f"/cases/{case['case_no']}").get_json()["status"] == "completed"


@pytest.mark.parametrize("kind", ["seizure", "objection", "mortgage_cancellation"])
def test_property_registration_at_once_kinds_skip_the_back_office(api, kind):
    case = api.start("property_registration", {"registration_kind": kind}, **PERSON)
    assert case["budget"] == "PT1H"
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    assert list(items) == ["instant"] and items["instant"]["department"] == "window"
    api.complete(items["instant"], "clerk", {"certificate_no": "C-1"})
    items = api.open_items(case["case_no"])
    api.complete(items["deliver"], "clerk", {"delivery_method": "window"})
    done = api.get(f"/cases/{case['case_no']}").get_json()
    assert done["status"] == "completed"
    assert {i["step"] for i in done["done_items"]} == {"accept", "instant", "deliver"}
