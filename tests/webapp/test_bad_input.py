"""Malformed requests found by a schema fuzzer as 500s, each a 4xx now, on SQLite and PostgreSQL (issue 11)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from workflows.models import Case, Pause


def _no_case_written(deployed):
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0


@pytest.mark.parametrize("path", ["/work-items/2147483648", "/work-items/9223372036854775808",
                                  "/work-items/" + "9" * 5000, "/incidents/99999999999/retry"])
def test_ids_past_a_database_integer_are_not_found(api, path):
    method = "POST" if path.endswith("retry") else "GET"
    r = api.call(method, path, "admin")
    assert r.status_code == 404, r.get_data(as_text=True)[:200]


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "limit=" + "9" * 5000, "offset=-1",
                                   "limit=abc", "state=%00"])
def test_bad_query_numbers_and_text(api, query):
    r = api.get(f"/work-items?{query}")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_input"


def test_json_nested_a_thousand_deep(api, deployed):
    body = '{"process": "company_setup", "applicant": {}, "data": ' + "[" * 1000 + "]" * 1000 + "}"
    r = api.post("/cases", "clerk", data=body, content_type="application/json")
    assert r.status_code == 400 and "nested" in r.get_json()["message"]
    _no_case_written(deployed)


@pytest.mark.parametrize("name", ["示例\u0000有限公司", "示例\ud800有限公司"])
def test_nul_and_lone_surrogates_in_text(api, deployed, name):
    import json

    raw = json.dumps({"process": "company_setup", "data": {},
                      "applicant": {"type": "company", "name": name, "id_no": "91350100M000100Y43"}})
    r = api.post("/cases", "clerk", data=raw, content_type="application/json")
    assert r.status_code == 400 and "applicant.name" in r.get_json()["message"], r.get_data(as_text=True)
    _no_case_written(deployed)


def test_nul_in_a_pause_reason_and_a_calendar_name(api, deployed):
    case = api.start("company_setup")
    r = api.post(f"/cases/{case['case_no']}/pause", "clerk", data='{"kind": "special", "reason": "a\\u0000b"}',
                 content_type="application/json")
    assert r.status_code == 400
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Pause)) == 0
    r = api.call("PUT", "/calendar/days/2026-03-09", "admin", data='{"kind": "holiday", "name": "x\\u0000"}',
                 content_type="application/json")
    assert r.status_code == 400


def test_huge_integers_in_json(api, deployed):
    raw = '{"process": "company_setup", "applicant": {"type": "company", "name": "x", "id_no": %s}, "data": {}}' % (
        "9" * 5000)
    r = api.post("/cases", "clerk", data=raw, content_type="application/json")
    assert r.status_code == 400
    _no_case_written(deployed)


@pytest.mark.parametrize("args", ["start=0001-01-01T00:00:00%2B08:00&duration=PT1H",
                                  "start=9999-12-31T23:00:00%2B08:00&duration=P5D"])
def test_calendar_maths_outside_the_calendars_years(api, args):
    r = api.get(f"/calendar/due?{args}")
    assert r.status_code == 400
    start, end = "0001-01-01T00:00:00%2B08:00", "9999-12-31T00:00:00%2B08:00"
    assert api.get(f"/calendar/elapsed?start={start}&end={end}").status_code == 400


def test_nul_in_a_page_form(app, deployed):
    from tests.webapp.test_pages import REQUIRED, Browser, intake_form

    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form(applicant_name="示例\x00公司", received=REQUIRED))
    assert r.status_code == 400
    _no_case_written(deployed)
