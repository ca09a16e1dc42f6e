"""Accounts: throttled sign-in with back-off and an admin-lifted lockout, a password policy, and
revocation of every older token and session (issue 11)."""

from __future__ import annotations

import threading
from datetime import datetime

from tests.conftest import DEMO_PASSWORD
from tests.webapp.test_pages import Browser, tokens
from timers.clock import SHANGHAI
from workflows.administration import users
from workflows.models import LoginThrottle


def _token(client, username="clerk", password=DEMO_PASSWORD, addr="198.51.100.7"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": addr})


def test_failed_sign_ins_back_off_then_lock_until_an_admin_lifts_it(client, app, deployed):
    for _ in range(users.FREE_FAILURES):
        assert _token(client, password="wrong-password").status_code == 403
    refused = _token(client)  # even the right password waits now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # wait out the back-off (moved in the database: the throttle follows real time)
    deployed.transaction(lambda s: s.execute(LoginThrottle.__table__.update().values(locked_until=None)))
    assert _token(client).status_code == 201  # a success clears the username's count
    def wait_out():
        deployed.transaction(lambda s: s.execute(LoginThrottle.__table__.update().values(locked_until=None)))

    for _ in range(users.LOCK_AFTER):
        wait_out()
        assert _token(client, password="wrong-password").status_code == 403
    wait_out()
    locked = _token(client)
    assert locked.status_code == 429 and "locked" in locked.get_json()["message"]
    admin = Browser(app, "admin")
    assert "已锁定" in admin.get("/admin/users").get_data(as_text=True)
    assert admin.post_form("/admin/users", op="unlock", username="clerk").status_code == 302
    wait_out()
    assert _token(client).status_code == 201
    assert "解除锁定" in admin.get("/admin/users").get_data(as_text=True).split("管理操作记录")[1]  # audited


def test_one_address_is_slowed_down_across_usernames(client):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        _token(client, username=name, password="wrong-password", addr="192.0.2.44")
    assert _token(client, username="police", addr="192.0.2.44").status_code == 429
    assert _token(client, username="police", addr="192.0.2.45").status_code == 201  # another address


def test_concurrent_guesses_cannot_slip_past_the_count(app, deployed):
    """40 wrong passwords at once from one address: only the free ones get a password check, and every
    guess that got one is counted."""
    barrier = threading.Barrier(40)
    answers: list[int] = []

    def guess(i):
        local = app.test_client()
        barrier.wait()
        r = local.post("/api/v1/auth/token", json={"username": f"guess{i}", "password": "wrong-password"},
                       environ_base={"REMOTE_ADDR": "203.0.113.50"})
        answers.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    checked = answers.count(403)
    assert checked + answers.count(429) == 40
    assert checked <= users.FREE_FAILURES + 1  # the attempt that crosses the line is the last one let through
    with deployed.read() as s:
        assert s.get(LoginThrottle, "addr:203.0.113.50").failures == checked


def test_an_unknown_user_costs_a_password_check_too(client, monkeypatch):
    checked = []
    original = users.check_password_hash
    monkeypatch.setattr(users, "check_password_hash", lambda h, p: checked.append(h) or original(h, p))
    assert _token(client, username="nobody-here").status_code == 403
    assert _token(client, username="clerk", password="wrong-password").status_code == 403
    assert len(checked) == 2 and all(checked)


def test_the_password_policy(app, deployed):
    admin = Browser(app, "admin")
    for password, why in (("short-pw", "10"), ("1234567890", "过于常见"), ("wangwu-secret", "不能包含用户名")):
        r = admin.post_form("/admin/users", op="create", username="wangwu", role="reviewer", department="tax",
                            password=password)
        assert r.status_code == 400 and why in r.get_data(as_text=True), password
    assert admin.post_form("/admin/users", op="create", username="wangwu", role="reviewer", department="tax",
                           password="Mianyang-hall-2026").status_code == 302


def test_a_password_reset_logout_disable_or_role_change_revokes_older_credentials(app, client, deployed):
    admin = Browser(app, "admin")
    token = _token(client).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/processes", headers=headers).status_code == 200
    assert admin.post_form("/admin/users", op="password", username="clerk",
                           password="A-new-password-2026").status_code == 302
    assert client.get("/api/v1/processes", headers=headers).status_code == 401

    clerk = Browser.__new__(Browser)
    clerk.client = app.test_client()
    page = clerk.client.get("/login").get_data(as_text=True)
    assert clerk.client.post("/login", data={"username": "clerk", "password": "A-new-password-2026",
                                             **tokens(page)}).status_code == 302
    saved = clerk.client.get_cookie("session").value
    assert clerk.get("/worklist").status_code == 200
    clerk.post_form("/worklist", "/logout")
    thief = app.test_client()
    thief.set_cookie("session", saved)  # a cookie saved before the logout
    assert thief.get("/worklist").status_code == 302  # back to the login page

    samr = Browser(app, "samr")
    assert samr.get("/worklist").status_code == 200
    admin.post_form("/admin/users", op="disable", username="samr")
    admin.post_form("/admin/users", op="enable", username="samr")
    assert samr.get("/worklist").status_code == 302  # re-enabling does not revive the old session

    police = Browser(app, "police")
    admin.post_form("/admin/users", op="assign", username="police", role="reviewer", department="tax")
    assert police.get("/worklist").status_code == 302


def test_tokens_expire_by_real_time_not_the_demo_clock(client, deployed, manual_clock):
    from workflows.administration.clock_store import set_clock

    token = _token(client).get_json()["token"]
    deployed.transaction(lambda s: set_clock(s, datetime(2027, 6, 1, 9, tzinfo=SHANGHAI)))
    assert client.get("/api/v1/processes", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_new_user_form_reports_every_problem_at_once(app, deployed):
    admin = Browser(app, "admin")
    r = admin.post_form("/admin/users", op="create", username="x", role="reviewer", department="nowhere",
                        password="short")
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "有 3 处需要更正" in page
    assert "用户名" in page and "密码：至少" in page and "部门" in page
