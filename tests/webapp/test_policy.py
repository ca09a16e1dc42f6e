"""Every route — API and page — is in the policy table, and the whole URL map answers every role as the
table says (issue 11): anonymous, a clerk, reviewers of two departments, a supervisor, an admin and a
disabled user."""

from __future__ import annotations

import re

import pytest

from tests.conftest import DEMO_PASSWORD
from tests.webapp.test_pages import Browser, accept_case, tokens
from webapp.policy import POLICY
from workflows.administration import staff_admin, users
from workflows.casework.cases import Actor

ROLES = {"anonymous": None, "clerk": "clerk", "samr": "samr", "police": "police", "supervisor": "supervisor",
         "admin": "admin", "disabled": "gone"}
ROLE_OF = {"clerk": "clerk", "samr": "reviewer", "police": "reviewer", "supervisor": "supervisor", "admin": "admin"}
SKIP = {("staff.logout", "POST")}  # ends the walking session: tested on its own (test_accounts)


def test_every_route_is_in_the_policy_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(POLICY) == set(), "routes without a policy"
    assert set(POLICY) - endpoints == set(), "policies for routes that do not exist"


def _path(rule) -> str:
    def fill(match):
        converter, args, name = match.group(1), match.group(2), match.group(3)
        if name == "filename":
            return "style.css"
        if converter == "any":  # a choice of words: the first one
            return args.split(",")[0].strip(" '\"")
        return "999999" if converter == "int" else "NOPE"
    return re.sub(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>", fill, rule.rule)


@pytest.fixture
def people(app, deployed):
    deployed.transaction(lambda s: users.add_user(s, "gone", "reviewer", DEMO_PASSWORD, "tax"))
    sessions, bearer = {}, {}
    for who, username in ROLES.items():
        if username is None:
            sessions[who] = Browser(app)
            continue
        sessions[who] = Browser(app, username)
        r = app.test_client().post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
        bearer[who] = r.get_json()["token"]
    deployed.transaction(lambda s: staff_admin.set_active(s, Actor("admin", "admin"), "gone", False))
    return sessions, bearer


def test_the_url_map_answers_every_role_as_the_policy_says(app, people):
    sessions, bearer = people
    checked = 0
    for rule in app.url_map.iter_rules():
        path = _path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) in SKIP:
                continue
            for who in ROLES:
                role = "anonymous" if who == "anonymous" else ROLE_OF.get(who)
                may = role is not None and role in POLICY[rule.endpoint]
                if who == "disabled":
                    may = "anonymous" in POLICY[rule.endpoint]
                browser = sessions[who]
                if path.startswith("/api/"):
                    headers = {"Authorization": f"Bearer {bearer[who]}"} if who in bearer else {}
                    r = browser.client.open(path, method=method, headers=headers,
                                            json={} if method in ("POST", "PUT") else None)
                    body = r.get_json(silent=True) or {}
                    refused = r.status_code == 401 or body.get("error") == "role_not_allowed"
                else:
                    page = browser.client.get("/login" if who in ("anonymous", "disabled") else "/worklist")
                    data = tokens(page.get_data(as_text=True)) if method == "POST" else None
                    r = browser.client.open(path, method=method, data=data)
                    refused = r.status_code == 403 or (r.status_code == 302 and "/login" in r.headers["Location"])
                assert refused != may, (who, method, path, r.status_code, r.get_data(as_text=True)[:200])
                checked += 1
    assert checked > 300


def test_a_reviewer_sees_a_case_only_once_it_reached_their_department(app, api, deployed):
    case_no, code = accept_case(app)  # company setup: samr, police and tax have steps; housing has none
    housing = Browser(app, "housing")
    for path in (f"/cases/{case_no}", f"/cases/{case_no}/notice"):
        assert housing.get(path).status_code == 404
    assert f'href="/cases/{case_no}"' not in housing.get(f"/cases?q={case_no}").get_data(as_text=True)
    assert api.get(f"/cases/{case_no}", as_user="housing").status_code == 404
    samr = api.get(f"/cases/{case_no}", as_user="samr")
    assert samr.status_code == 200 and samr.get_json()["query_code"] is None  # not the window's
    assert api.get(f"/cases/{case_no}", as_user="clerk").get_json()["query_code"] == code
    assert code not in Browser(app, "samr").get(f"/cases/{case_no}/notice").get_data(as_text=True)
    assert code in Browser(app, "clerk").get(f"/cases/{case_no}/notice").get_data(as_text=True)
    assert f'href="/cases/{case_no}"' in Browser(app, "samr").get(f"/cases?q={case_no}").get_data(as_text=True)


def test_another_departments_attachment_answers_as_if_there_were_none(app, deployed, tmp_path, monkeypatch):
    import io

    from workflows.casework import attachments
    from workflows.models import Case

    monkeypatch.setenv("ONEWINDOW_UPLOAD_DIR", str(tmp_path))
    case_no, _ = accept_case(app)
    with deployed.read() as s:
        from sqlalchemy import select
        case_id = s.scalar(select(Case.id).where(Case.case_no == case_no))
    row = deployed.transaction(lambda s: attachments.save(s, s.get(Case, case_id), "step", "a.pdf",
                                                          io.BytesIO(b"%PDF-1.4 x"), "clerk"))
    assert Browser(app, "samr").get(f"/attachments/{row.id}").status_code == 200
    assert Browser(app, "housing").get(f"/attachments/{row.id}").status_code == 404


def test_staff_cannot_act_as_the_applicant(app, deployed):
    case_no, code = accept_case(app)
    clerk = Browser(app, "clerk")
    clerk.post_form("/track", case_no=case_no, query_code=code)
    page = clerk.get(f"/track/{case_no}").get_data(as_text=True)
    r = clerk.client.post(f"/track/{case_no}/rate", data={**tokens(page), "score": "1"}, follow_redirects=True)
    assert "工作人员不能以申请人身份" in r.get_data(as_text=True)
    from sqlalchemy import func, select

    from workflows.models import Rating
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 0
