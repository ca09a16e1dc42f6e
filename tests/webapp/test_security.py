"""Headers, redirects, operational endpoints and what the API may not be used for (issue 11)."""

from __future__ import annotations

from tests.webapp.test_pages import Browser, tokens
from tests.workflows.test_isolation import process
from workflows.definitions.processes import deploy


def test_every_page_and_answer_carries_the_security_headers(client, api):
    for response in (client.get("/"), client.get("/login"), client.get("/guide/QYKB"), api.get("/processes"),
                     client.get("/no-such-page")):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in \
            csp.split("script-src", 1)[1].split(";")[0]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_page_has_inline_script(app):
    clerk = Browser(app, "supervisor")
    for path in ("/alerts", "/board", "/stats", "/worklist"):
        html = clerk.get(path).get_data(as_text=True)
        assert "<script>" not in html and "onclick=" not in html


def test_a_wrong_method_answers_405_with_allow(client, api):
    r = client.put("/api/v1/processes")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert client.delete("/login").headers.get("Allow")


def test_login_redirects_only_to_local_paths(app):
    for target, expected in (("/worklist", "/worklist"), ("//evil.example/", "/"), ("/%09/evil.example/", "/"),
                             ("/\t/evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/")):
        browser = Browser(app)
        page = browser.client.get("/login").get_data(as_text=True)
        r = browser.client.post("/login?next=" + target.replace("\t", "%09"),
                                data={"username": "clerk", "password": "onewindow-demo", **tokens(page)})
        assert r.status_code == 302
        location = r.headers["Location"]
        assert not location.startswith("//") and "evil" not in location, (target, location)
        if expected != "/":
            assert location == expected


def test_metrics_need_a_token_or_an_allowed_address(client, monkeypatch):
    assert client.get("/metrics").status_code == 200  # the test client is this machine
    far = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=far).status_code == 403
    monkeypatch.setenv("ONEWINDOW_METRICS_TOKEN", "s3cret-token")
    assert client.get("/metrics", environ_base=far, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", environ_base=far,
                      headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    monkeypatch.setenv("ONEWINDOW_METRICS_ALLOW", "203.0.113.0/24")
    assert client.get("/metrics", environ_base=far).status_code == 200
    assert client.get("/metrics").status_code == 403  # the list replaces the default


def test_secure_cookies_on_request(deployed, monkeypatch):
    from webapp.app import create_app

    monkeypatch.setenv("ONEWINDOW_SECURE_COOKIES", "1")
    app = create_app({"TESTING": True}, database=deployed)
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    r = browser.post("/login", data={"username": "clerk", "password": "onewindow-demo", **tokens(page)})
    assert "Secure" in r.headers["Set-Cookie"]


def test_internal_processes_are_not_started_by_hand(api):
    r = api.post("/cases", "clerk", json={"process": "rating_followup", "applicant": {
        "type": "person", "name": "张三", "id_no": "11010519491231002X"}, "data": {}})
    assert r.status_code == 403 and "system" in r.get_json()["message"]


def test_a_script_error_names_the_element_and_not_the_exception(api, deployed, caplog):
    deployed.transaction(lambda s: deploy(s, process("leaky", script="x = secret_table['id_no']"), "l.bpmn"))
    case = api.start("leaky")
    item = api.open_items(case["case_no"])["accept"]
    r = api.post(f"/work-items/{item['id']}/complete", "clerk", json={"data": {}})
    body = r.get_json()
    assert r.status_code == 409 and "计算" in body["message"]
    assert "NameError" not in body["message"] and "secret_table" not in body["message"]
    assert any("secret_table" in rec.getMessage() for rec in caplog.records)  # logged in full


def test_the_openapi_documents_the_real_error_body(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"] if "Error" in spec["components"]["schemas"] else \
        next(v for k, v in spec["components"]["schemas"].items() if k.startswith("Error"))
    assert set(error["properties"]) == {"error", "message", "fields", "retry_after"}


def test_uploads_per_case_are_limited_with_a_clear_message(app, deployed, tmp_path, monkeypatch):
    import io

    from tests.webapp.test_pages import REQUIRED, intake_form
    from workflows.casework import attachments

    monkeypatch.setenv("ONEWINDOW_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setattr(attachments, "CASE_MAX_FILES", 2)
    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form(action="supplement", received=REQUIRED[:-1],
                                                        missing=[REQUIRED[-1]], reason="请补交"))
    import re
    notice = clerk.get(r.headers["Location"]).get_data(as_text=True)
    case_no = re.search(r'id="case-no">([^<]+)<', notice).group(1)
    code = re.search(r'id="query-code">([^<]+)<', notice).group(1)
    applicant = Browser(app)
    applicant.post_form("/track", case_no=case_no, query_code=code)
    for n in range(3):
        page = applicant.get(f"/track/{case_no}").get_data(as_text=True)
        r = applicant.client.post(f"/track/{case_no}/supply", data={
            **tokens(page), "files": (io.BytesIO(b"%PDF-1.4 " + bytes([65 + n])), "a.pdf")}, follow_redirects=True)
    assert "本件上传已达上限" in r.get_data(as_text=True)
    assert len(list((tmp_path / "uploads").iterdir())) == 2  # the refused file was not kept


def test_an_unreachable_database_answers_503_and_a_chinese_page():
    from webapp.app import create_app
    from workflows.db import Database

    gone = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    app = create_app({"TESTING": True, "SECRET_KEY": "x" * 32, "WTF_CSRF_ENABLED": False}, database=gone)
    client = app.test_client()
    r = client.post("/api/v1/auth/token", json={"username": "clerk", "password": "whatever-it-is"})
    assert r.status_code == 503 and r.headers["Retry-After"] and r.get_json()["error"] == "unavailable"
    r = client.post("/login", data={"username": "clerk", "password": "whatever-it-is"})
    assert r.status_code == 503 and "系统暂时无法处理，请稍后重试" in r.get_data(as_text=True)
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json()["status"] == "database unreachable"


def test_a_read_only_database_answers_503_writes_nothing_and_recovers_by_itself(api, deployed, db_url, client):
    if not db_url.startswith("postgresql"):
        import pytest
        pytest.skip("a read-only database is made on PostgreSQL (root ignores file permissions on SQLite)")
    from sqlalchemy import create_engine, func, select, text

    from workflows.models import Case

    api.token("clerk")
    name = db_url.rsplit("/", 1)[1]
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    deployed.engine.dispose()
    try:
        r = api.post("/cases", "clerk", json={"process": "company_setup", "applicant": {
            "type": "company", "name": "示例有限公司", "id_no": "91350100M000100Y43"}, "data": {}})
        assert r.status_code == 503 and r.headers["Retry-After"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["status"] == "database failing writes"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        admin.dispose()
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
    api.start("company_setup")  # resumed by itself: the failed requests dropped the read-only connections


def test_forwarded_addresses_are_believed_from_trusted_proxies_only(app, monkeypatch):
    from webapp.auth import client_address

    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.0.0.5"},
                                  headers={"X-Forwarded-For": "198.51.100.1, 10.0.0.9"}):
        assert client_address() == "10.0.0.5"  # no trusted proxy configured: the header is ignored
    monkeypatch.setenv("ONEWINDOW_TRUSTED_PROXIES", "10.0.0.5,10.0.0.9")
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.0.0.5"},
                                  headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.1, 10.0.0.9"}):
        assert client_address() == "198.51.100.1"  # the last hop no trusted proxy added itself
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "192.0.2.1"},
                                  headers={"X-Forwarded-For": "198.51.100.1"}):
        assert client_address() == "192.0.2.1"  # not from a trusted proxy
