from urllib.parse import quote

from flask import Response
from flask_smorest import Blueprint
from sqlalchemy import func, select

from webapp.api.schemas import ProcessList, ProcessOut
from webapp.auth import database, login_required
from workflows.definitions.catalogue import catalogue
from workflows.definitions.processes import definition_for
from workflows.errors import NotFound
from workflows.models import ProcessVersion

PREFIX = "/processes"
blp = Blueprint("processes", __name__, description="Deployed processes")


def _describe(version: ProcessVersion, count: int) -> dict:
    definition = definition_for(version)
    matter = catalogue().matter_for_process(version.process_key)
    return {"key": version.process_key, "name": version.name, "version": version.version, "versions": count,
            "deployed_at": version.deployed_at, "matter": matter.code if matter else None,
            "case_budget": definition.case_budget, "case_budget_expr": definition.case_budget_expr,
            "start_fields": [f.describe() for f in definition.start_fields],
            "steps": list(definition.steps.values())}


def _latest(session):
    newest = (select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v"),
                     func.count().label("n")).group_by(ProcessVersion.process_key).subquery())
    rows = session.execute(select(ProcessVersion, newest.c.n).join(
        newest, (ProcessVersion.process_key == newest.c.process_key) & (ProcessVersion.version == newest.c.v))
        .order_by(ProcessVersion.process_key)).all()
    return rows


@blp.route("")
@blp.response(200, ProcessList)
@blp.doc(security=[{"bearer": []}])
@login_required
def list_processes():
    """The processes that can be started, each at its newest version."""
    with database().read() as session:
        return {"processes": [_describe(v, n) for v, n in _latest(session)]}


@blp.route("/<key>")
@blp.response(200, ProcessOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def get_process(key: str):
    with database().read() as session:
        for version, count in _latest(session):
            if version.process_key == key:
                return _describe(version, count)
    raise NotFound("no process '{key}' is deployed", {"key": key})


@blp.route("/<key>/versions/<int:number>/bpmn")
@blp.doc(security=[{"bearer": []}], responses={200: {"description": "the deployed BPMN file, as uploaded"}})
@login_required
def get_bpmn(key: str, number: int):
    """The file a version was deployed from, to open again in a modeler."""
    with database().read() as session:
        version = session.scalar(select(ProcessVersion).where(ProcessVersion.process_key == key,
                                                               ProcessVersion.version == number))
        if version is None:
            raise NotFound("no process '{key}' is deployed", {"key": key})
        return bpmn_download(version)


def bpmn_download(version: ProcessVersion) -> Response:
    response = Response(version.bpmn_xml, mimetype="application/xml")
    name = quote(version.filename or f"{version.process_key}.bpmn")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
    return response
