"""Who may call what: one table for every route of the app, API and pages, checked on every request.

A route missing from the table is refused to everyone (and the test that walks the URL map fails), so a
new route cannot go out without its line here. What a role may see inside a route — which cases, which
work items — is the domain's rule (`workflows.casework.visibility`); this table is the first gate.
"""

from __future__ import annotations

from flask import Flask, abort, request
from flask_login import current_user

ANYONE = frozenset({"anonymous", "clerk", "reviewer", "supervisor", "admin"})
STAFF = frozenset({"clerk", "reviewer", "supervisor", "admin"})
WINDOW = frozenset({"clerk", "admin"})
WORKERS = frozenset({"clerk", "reviewer", "admin"})
SUPERVISION = frozenset({"supervisor", "admin"})
ADMIN = frozenset({"admin"})

POLICY: dict[str, frozenset[str]] = {
    # --- public: the applicant, the service guide, the operational endpoints, sign-in -------------
    "static": ANYONE,
    "public.favicon": ANYONE,
    "public.home": ANYONE,
    "public.guide": ANYONE,
    "public.track": ANYONE,
    "public.progress": ANYONE,
    "public.supply": ANYONE,
    "public.rate": ANYONE,
    "public.withdraw": ANYONE,
    "health.healthz": ANYONE,
    "health.metrics": ANYONE,  # behind its own token or address list (webapp/security.py)
    "staff.login": ANYONE,
    "auth.token": ANYONE,
    "api-docs.openapi_json": ANYONE,
    # --- staff pages ----------------------------------------------------------------------------
    "staff.logout": STAFF,
    "staff.home": STAFF,
    "staff.worklist": STAFF,
    "staff.intake_matters": WINDOW,
    "staff.intake": WINDOW,
    "staff.receipt": STAFF,
    "staff.confirm_supplement": WINDOW,
    "staff.search": STAFF,
    "staff.case_page": STAFF,
    "staff.attachment": STAFF,
    "staff.work_item": STAFF,
    "staff.return_item": STAFF,
    "staff.transfer": STAFF,
    "staff.urge": WINDOW | SUPERVISION,
    "staff.claim": STAFF,
    "staff.release": STAFF,
    "staff.pause": WORKERS,
    "staff.resume": WORKERS,
    "staff.terminate": SUPERVISION,
    "staff.deliver_message": SUPERVISION,
    "staff.add_note": STAFF,
    "staff.request_extension": WINDOW | {"reviewer"},
    "staff.decide_extension": SUPERVISION,
    "staff.extension_notice": STAFF,
    "staff.acknowledge": STAFF,
    "staff.acknowledge_all": STAFF,
    "supervision.inbox": STAFF,
    "supervision.inbox_fragment": STAFF,
    "supervision.acknowledge": STAFF,
    "supervision.sla_board": SUPERVISION,
    "supervision.stats": SUPERVISION,
    "supervision.stats_csv": SUPERVISION,
    "supervision.stats_xlsx": SUPERVISION,
    "supervision.admin_processes": ADMIN,
    "supervision.admin_process": ADMIN,
    "supervision.admin_process_file": ADMIN,
    "supervision.admin_calendar": ADMIN,
    "supervision.admin_users": ADMIN,
    "supervision.admin_incidents": ADMIN,
    # --- the API --------------------------------------------------------------------------------
    "processes.list_processes": STAFF,
    "processes.get_process": STAFF,
    "processes.get_bpmn": STAFF,
    "cases.start": WINDOW,
    "cases.get": STAFF,
    "cases.pause": WORKERS,
    "cases.resume": WORKERS,
    "cases.terminate": SUPERVISION,
    "cases.waiting": STAFF,
    "cases.deliver": SUPERVISION,
    "cases.add_note": STAFF,
    "extensions.request_extension": WINDOW | {"reviewer"},
    "extensions.approve": SUPERVISION,
    "extensions.refuse": SUPERVISION,
    "extensions.open_supervision": SUPERVISION,
    "extensions.reply_supervision": STAFF,
    "staff.open_supervision": SUPERVISION,
    "staff.reply_supervision": STAFF,
    "cases.withdraw": WINDOW,
    "work_items.list_items": STAFF,
    "work_items.get": STAFF,
    "work_items.claim": STAFF,
    "work_items.release": STAFF,
    "work_items.complete": STAFF,
    "work_items.return_item": STAFF,
    "work_items.return_targets": STAFF,
    "work_items.withdraw": STAFF,
    "work_items.transfer": STAFF,
    "work_items.urge": WINDOW | SUPERVISION,
    "alerts.list_alerts": STAFF,
    "alerts.acknowledge": STAFF,
    "alerts.acknowledge_many": STAFF,
    "people.stand_in": STAFF,
    "copies.list_copies": STAFF,
    "work_items.cc": STAFF,
    "work_items.consult": STAFF,
    "work_items.delegate": STAFF,
    "consultations.answer": STAFF,
    "consultations.withdraw_question": STAFF,
    "staff.copies_page": STAFF,
    "staff.cc": STAFF,
    "staff.consult": STAFF,
    "staff.delegate": STAFF,
    "staff.answer": STAFF,
    "incidents.list_incidents": ADMIN,
    "incidents.retry": ADMIN,
    "calendar.years": STAFF,
    "calendar.year_days": STAFF,
    "calendar.due": STAFF,
    "calendar.elapsed": STAFF,
    "calendar.load_year": ADMIN,
    "calendar.set_day": ADMIN,
    "calendar.office_hours": ADMIN,
    "clock.show": STAFF,
    "clock.put": ADMIN,
}


def allowed(endpoint: str | None, role: str) -> bool:
    return role in POLICY.get(endpoint or "", frozenset())


def is_public(endpoint: str | None) -> bool:
    return "anonymous" in POLICY.get(endpoint or "", frozenset())


def register(app: Flask) -> None:
    @app.before_request
    def _gate():
        endpoint = request.endpoint
        if endpoint is None:  # 404 and 405 answer for themselves
            return None
        if endpoint not in POLICY:
            abort(403)  # a route nobody declared is nobody's
        if is_public(endpoint):
            return None
        if request.path.startswith("/api/"):
            from webapp.auth import authenticate

            authenticate()  # the bearer token, before the body is even read
            return None
        if not current_user.is_authenticated:
            return app.login_manager.unauthorized()
        if not allowed(endpoint, current_user.role):
            abort(403)
        return None
