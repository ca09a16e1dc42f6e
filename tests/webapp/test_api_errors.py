"""Bad requests get a clear 4xx in {"error", "message"} and change nothing."""

from __future__ import annotations

import pytest

from tests.conftest import COMPANY


def snapshot(api, case_no):
    case = api.get(f"/cases/{case_no}").get_json()
    return {k: case[k] for k in ("status", "data", "open_items", "done_items", "history", "updated_at")}


@pytest.fixture
def accepted(api):
    case = api.start("company_setup")
    items = api.open_items(case["case_no"])
    api.complete(items["accept"], "clerk", {"decision": "accept"})
    return case["case_no"]


def assert_error(response, status, code=None, mentions=None):
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) >= {"error", "message"} and body["message"]
    if code:
        assert body["error"] == code
    if mentions:
        assert mentions in body["message"], body["message"]
    return body


def test_malformed_json_is_400(api, accepted):
    before = snapshot(api, accepted)
    item = api.open_items(accepted)["seal"]
    r = api.post(f"/work-items/{item['id']}/complete", "police", data="{not json",
                 content_type="application/json")
    assert_error(r, 400)
    r = api.post("/cases", "clerk", data="[1, 2", content_type="application/json")
    assert_error(r, 400)
    assert snapshot(api, accepted) == before


def test_unknown_process_is_404(api):
    r = api.post("/cases", "clerk", json={"process": "no_such_process", "applicant": COMPANY})
    assert_error(r, 404, "not_found", "no_such_process")


@pytest.mark.parametrize("body, mentions", [
    ({"applicant": COMPANY}, "process"),
    ({"process": "company_setup"}, "applicant"),
    ({"process": 42, "applicant": COMPANY}, "process"),
    ({"process": "company_setup", "applicant": {**COMPANY, "type": "alien"}}, "type"),
    ({"process": "company_setup", "applicant": {**COMPANY, "id_no": "91350100M000100Y44"}}, "id_no"),
    ({"process": "company_setup", "applicant": COMPANY, "data": "nope"}, "data"),
    ({"process": "company_setup", "applicant": COMPANY, "surprise": 1}, "surprise"),
    ({"process": "construction_permit", "applicant": COMPANY, "data": {"project_type": "castle",
                                                                      "project_name": "x"}}, "project_type"),
    ({"process": "construction_permit", "applicant": COMPANY, "data": {"project_name": "x"}}, "project_type"),
    ({"process": "company_setup", "applicant": COMPANY, "matter": "GCJS"}, "matter"),
])
def test_bad_case_requests_are_400_and_start_nothing(api, body, mentions):
    r = api.post("/cases", "clerk", json=body)
    assert_error(r, 400, mentions=mentions)
    listed = api.get("/work-items").get_json()
    assert listed["total"] == 0


@pytest.mark.parametrize("data, mentions", [
    ({}, "seal_no"),
    ({"seal_no": 123}, "seal_no"),
    ({"seal_no": "   "}, "seal_no"),
    ({"seal_no": "S-1", "bogus": True}, "bogus"),
])
def test_wrong_field_types_are_400_and_the_case_is_unchanged(api, accepted, data, mentions):
    before = snapshot(api, accepted)
    item = api.open_items(accepted)["seal"]
    r = api.post(f"/work-items/{item['id']}/complete", "police", json={"data": data})
    assert_error(r, 400, "invalid_input", mentions)
    assert snapshot(api, accepted) == before


def test_completing_twice_is_409_and_the_case_is_unchanged(api, accepted):
    item = api.open_items(accepted)["seal"]
    api.complete(item, "police", {"seal_no": "S-1"})
    before = snapshot(api, accepted)
    r = api.post(f"/work-items/{item['id']}/complete", "police", json={"data": {"seal_no": "S-2"}})
    assert_error(r, 409, "conflict", "already completed")
    assert snapshot(api, accepted) == before


def test_someone_elses_claimed_item(api, client, accepted):
    from workflows.administration import users
    from workflows.db import Database  # noqa: F401
    db = client.application.extensions["onewindow.db"]
    db.transaction(lambda s: users.add_user(s, "police2", "reviewer", "onewindow-demo", "police"))
    item = api.open_items(accepted)["seal"]
    r = api.post(f"/work-items/{item['id']}/claim", "police")
    assert r.status_code == 200 and r.get_json()["assignee"] == "police" and r.get_json()["state"] == "claimed"
    before = snapshot(api, accepted)
    assert_error(api.post(f"/work-items/{item['id']}/complete", "police2", json={"data": {"seal_no": "X"}}),
                 403, "forbidden", "claimed by 公安审批员")  # by name, not login
    assert_error(api.post(f"/work-items/{item['id']}/claim", "police2"), 409, "conflict", "claimed by 公安审批员")
    assert_error(api.post(f"/work-items/{item['id']}/release", "police2"), 403, "forbidden")
    assert snapshot(api, accepted) == before
    # the owner releases it, then the colleague may take it
    assert api.post(f"/work-items/{item['id']}/release", "police").get_json()["state"] == "open"
    assert api.post(f"/work-items/{item['id']}/claim", "police2").get_json()["assignee"] == "police2"
    api.complete(item, "police2", {"seal_no": "S-9"})


def test_another_departments_step_is_403(api, accepted):
    before = snapshot(api, accepted)
    item = api.open_items(accepted)["seal"]
    assert_error(api.post(f"/work-items/{item['id']}/complete", "tax", json={"data": {"seal_no": "X"}}),
                 403, "forbidden", "Public Security")
    assert_error(api.post(f"/work-items/{item['id']}/claim", "samr"), 403)
    assert_error(api.get("/work-items?department=police", "tax"), 403)
    assert_error(api.get(f"/work-items/{item['id']}", "tax"), 403)
    assert snapshot(api, accepted) == before


def test_unknown_work_item_and_case_are_404(api):
    assert_error(api.post("/work-items/999999/complete", "police", json={"data": {}}), 404, "not_found")
    assert_error(api.get("/cases/2026QYKB999999"), 404, "not_found")


def test_authentication(api, client):
    assert_error(client.get("/api/v1/work-items"), 401, "unauthorized")
    assert_error(client.get("/api/v1/work-items", headers={"Authorization": "Bearer nonsense"}), 401)
    assert_error(client.post("/api/v1/auth/token", json={"username": "clerk", "password": "wrong"}), 403)
    assert_error(client.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong"}), 403)
    assert_error(client.post("/api/v1/auth/token", json={"username": "clerk"}), 400, mentions="password")
    # reviewers and supervisors do not take in cases
    for who in ("samr", "supervisor"):
        assert_error(api.post("/cases", who, json={"process": "company_setup", "applicant": COMPANY}), 403)


def test_worklist_filters(api, accepted):
    all_active = api.get("/work-items?state=active", "supervisor").get_json()
    assert sorted(i["step"] for i in all_active["items"]) == ["invoice", "registration", "seal"]
    police = api.get("/work-items?department=police&state=open", "supervisor").get_json()["items"]
    assert [i["step"] for i in police] == ["seal"]
    assert set(police[0]) >= {"id", "case_no", "step", "name", "role", "department", "assignee", "state"}
    api.post(f"/work-items/{police[0]['id']}/claim", "police")
    mine = api.get("/work-items?assignee=police", "police").get_json()["items"]
    assert [i["state"] for i in mine] == ["claimed"]
    reviewers = api.get("/work-items?role=reviewer&state=open", "admin").get_json()["items"]
    assert sorted(i["step"] for i in reviewers) == ["invoice", "registration"]
    assert_error(api.get("/work-items?state=weird", "admin"), 400, mentions="state")
    assert_error(api.get("/work-items?limit=0", "admin"), 400, mentions="limit")
    # a clerk sees only the window's items by default
    assert api.get("/work-items?state=active", "clerk").get_json()["items"] == []


def test_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["info"]["title"].startswith("OneWindow")
    for path in ("/api/v1/cases", "/api/v1/cases/{case_no}", "/api/v1/work-items",
                 "/api/v1/work-items/{item_id}/claim", "/api/v1/work-items/{item_id}/release",
                 "/api/v1/work-items/{item_id}/complete", "/api/v1/processes", "/api/v1/auth/token"):
        assert path in doc["paths"], path


def test_list_processes(api):
    listed = api.get("/processes", "clerk").get_json()["processes"]
    from workflows.definitions.processes import bundled_files

    assert sorted(p["key"] for p in listed) == sorted(f.stem for f in bundled_files())  # one process per file
    company = next(p for p in listed if p["key"] == "company_setup")
    # the limits come from the catalogue (region in force), the steps' budgets read at deploy
    assert company["case_budget"] == "catalogue" and company["version"] == 1 and company["matter"] == "QYKB"
    seal = next(s for s in company["steps"] if s["id"] == "seal")
    assert seal["department"] == "police" and seal["budget"] == "PT3H"
    assert {"name": "seal_no", "type": "string", "required": True, "label": "印章编码"} in seal["fields"]
