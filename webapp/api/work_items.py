from flask_smorest import Blueprint

from webapp.api.schemas import (
    AnswerIn,
    CcIn,
    CompleteIn,
    ConsultationList,
    ConsultationOut,
    ConsultIn,
    CopyList,
    DelegateIn,
    ReturnIn,
    ReturnTargetList,
    TransferIn,
    UrgeIn,
    WorkItemList,
    WorkItemOut,
    WorkItemQueryArgs,
)
from webapp.auth import current_actor, database, login_required
from workflows.casework import cases, copies, operations

PREFIX = "/work-items"
blp = Blueprint("work_items", __name__, description="Work items: the ready steps of cases")


@blp.route("")
@blp.arguments(WorkItemQueryArgs, location="query")
@blp.response(200, WorkItemList)
@blp.doc(security=[{"bearer": []}])
@login_required
def list_items(args):
    """Work items by role, department, assignee and state (state=active means open or claimed).

    Clerks and reviewers see their own department's items; supervisors and admins see all."""
    query = cases.WorkItemQuery(**args)
    with database().read() as session:
        items, total = cases.list_work_items(session, query, current_actor())
        return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@blp.route("/<int:item_id>")
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def get(item_id: int):
    with database().read() as session:
        return cases.get_work_item(session, item_id, current_actor())


@blp.route("/<int:item_id>/claim", methods=["POST"])
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def claim(item_id: int):
    """Take a work item from the department's queue."""
    actor = current_actor()
    return database().transaction(lambda s: cases.claim(s, item_id, actor))


@blp.route("/<int:item_id>/release", methods=["POST"])
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def release(item_id: int):
    """Put a claimed work item back in the department's queue."""
    actor = current_actor()
    return database().transaction(lambda s: cases.release(s, item_id, actor))


@blp.route("/<int:item_id>/complete", methods=["POST"])
@blp.arguments(CompleteIn)
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def complete(body, item_id: int):
    """Complete a step with its form data: the process runs first (no lock held), then the step, the
    process's new state, work items, clocks and history are written in one transaction."""
    actor = current_actor()
    return cases.complete_step(database(), item_id, actor, body.get("data"))


@blp.route("/<int:item_id>/return", methods=["POST"])
@blp.arguments(ReturnIn)
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def return_item(body, item_id: int):
    """退回: send the step back to an earlier one (the step before by default, "window" for the window's
    受理审查, or a step of `GET …/return-targets`) with a reason. Answers the returned-to step's new item."""
    return operations.return_to(database(), item_id, current_actor(), body.get("to"), body["reason"])


@blp.route("/<int:item_id>/return-targets")
@blp.response(200, ReturnTargetList)
@blp.doc(security=[{"bearer": []}])
@login_required
def return_targets(item_id: int):
    """The earlier steps this item may be returned to by the caller, nearest first."""
    with database().read() as session:
        cases.get_work_item(session, item_id, current_actor())  # the department's own items only
        return {"targets": operations.targets(session, item_id, current_actor())}


@blp.route("/<int:item_id>/withdraw", methods=["POST"])
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def withdraw(item_id: int):
    """撤回 (拿回): whoever completed a step takes it back while what followed is still open and unclaimed;
    those items are cancelled. Answers the step's new item, claimed by its completer."""
    return operations.withdraw(database(), item_id, current_actor())


@blp.route("/<int:item_id>/transfer", methods=["POST"])
@blp.arguments(TransferIn)
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def transfer(body, item_id: int):
    """转办: hand the item to a named colleague of the same department, with a reason; both are told."""
    actor = current_actor()
    return database().transaction(lambda s: operations.transfer(s, item_id, actor, body["to"], body["reason"]))


@blp.route("/<int:item_id>/urge", methods=["POST"])
@blp.arguments(UrgeIn)
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def urge(body, item_id: int):
    """催办 (the window, supervisors): its holder or department is told; the item counts it."""
    actor = current_actor()
    return database().transaction(lambda s: operations.urge(s, item_id, actor, body.get("message")))


@blp.route("/<int:item_id>/cc", methods=["POST"])
@blp.arguments(CcIn)
@blp.response(201, CopyList)
@blp.doc(security=[{"bearer": []}])
@login_required
def cc(body, item_id: int):
    """抄送: the holder copies the case to users or departments, read-only; each is told."""
    actor = current_actor()
    return {"copies": database().transaction(lambda s: copies.copy_item(s, item_id, actor, body["to"]))}


@blp.route("/<int:item_id>/consult", methods=["POST"])
@blp.arguments(ConsultIn)
@blp.response(201, ConsultationList)
@blp.doc(security=[{"bearer": []}])
@login_required
def consult(body, item_id: int):
    """加签 (征求意见): ask people or departments for an opinion; the step waits for every answer."""
    actor = current_actor()
    return {"consultations": database().transaction(
        lambda s: copies.consult(s, item_id, actor, body["to"], body["question"]))}


consultations_blp = Blueprint("consultations", __name__, description="加签: opinions asked of a step")


@consultations_blp.route("/<int:consultation_id>/answer", methods=["POST"])
@consultations_blp.arguments(AnswerIn)
@consultations_blp.response(200, ConsultationOut)
@consultations_blp.doc(security=[{"bearer": []}])
@login_required
def answer(body, consultation_id: int):
    actor = current_actor()
    return database().transaction(lambda s: copies.answer(s, consultation_id, actor, body["answer"]))


@consultations_blp.route("/<int:consultation_id>/withdraw", methods=["POST"])
@consultations_blp.response(200, ConsultationOut)
@consultations_blp.doc(security=[{"bearer": []}])
@login_required
def withdraw_question(consultation_id: int):
    actor = current_actor()
    return database().transaction(lambda s: copies.withdraw_question(s, consultation_id, actor))


@blp.route("/<int:item_id>/delegate", methods=["POST"])
@blp.arguments(DelegateIn)
@blp.response(200, WorkItemOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def delegate(body, item_id: int):
    """委派: the holder asks a colleague to do the step; the colleague's completion comes back to the holder
    as a draft to confirm (complete) or to delegate again."""
    actor = current_actor()
    return database().transaction(lambda s: operations.delegate(s, item_id, actor, body["to"]))
