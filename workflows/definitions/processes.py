"""Processes as data: reading BPMN safely, checking it, deploying versions, caching parsed specs.

A BPMN upload is untrusted XML: it is parsed with no DTD, no entity expansion and no network, and
a document that declares a DOCTYPE is refused outright (XXE, billion laughs). Parsed specs are cached
per process version; specs are immutable at run time, so every case of a version shares one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.manual_task import ManualTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from timers.durations import parse_duration

from ..errors import InvalidProcess, Msg, NotFound
from ..models import ProcessVersion
from .catalogue import BPMN_DIR, catalogue
from .forms import Field, fields_from_properties
from .modeling import assignment, inference, rewrite, tasks, wording
from .modeling import forms as modeler_forms
from .scripting import ScriptRefused, compile_script, evaluate
from .timer_events import WorkingCycleTimer, WorkingDurationTimer, adopt_timers, cycle_of

MAX_BPMN_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Step:
    """What the hall needs to know about one BPMN activity (a user task or a stage)."""

    bpmn_id: str
    name: str
    kind: str  # "task" or "stage"
    lane: str | None
    department: str
    role: str
    budget: str | None
    budget_expr: str | None
    fields: tuple[Field, ...] = ()
    return_to: tuple[str, ...] = ()  # the earlier steps a reviewer may return this one to (empty: any)
    cc: tuple[str, ...] = ()  # whom to copy (抄送) when it completes: department codes or usernames
    position: str | None = None  # the position in the department that works it (e.g. 科长)
    assignee: str | None = None  # a user the file names (camunda:assignee): the step goes to their list
    respond_within: str | None = None  # 签收时限: how soon it must be taken up (a clock of scope "response")


@dataclass
class ProcessDefinition:
    key: str
    name: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    steps: dict[str, Step]
    start_fields: tuple[Field, ...]
    case_budget: str | None
    case_budget_expr: str | None
    outcomes: dict[str, str] = field(default_factory=dict)
    # "acceptance" (default): the case clock starts when the window accepts (the first step is done);
    # "start": it starts with the case (internal processes with no window step)
    case_clock: str = "acceptance"
    # who works each task, resolved at deploy and stored with the version (modeling/assignment.py)
    assignments: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # accepted but not honoured: said at deploy
    companions: dict[str, str] = field(default_factory=dict)  # the files deployed with it
    initiator_variable: str | None = None  # the start event's camunda:initiator (who started the case)


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_pis=True)


def read_xml(content: bytes) -> etree._ElementTree:
    if len(content) > MAX_BPMN_BYTES:
        raise InvalidProcess("the file is larger than {max_bpmn_bytes} KiB", {"max_bpmn_bytes": MAX_BPMN_BYTES // 1024})
    # Refused before parsing: a BPMN file has no use for a DTD, and none is ever read or expanded.
    upper = content.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise InvalidProcess("DOCTYPE declarations are not allowed in BPMN files (no DTD, no entities)")
    try:
        tree = etree.ElementTree(etree.fromstring(content, _hardened_parser()))
    except etree.XMLSyntaxError as exc:
        raise InvalidProcess("not well-formed XML: {exc}", {"exc": exc}, line=exc.lineno) from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise InvalidProcess("DOCTYPE declarations are not allowed in BPMN files (no DTD, no entities)")
    if any(isinstance(node, etree._Entity) for node in tree.iter()):
        raise InvalidProcess("entity references are not allowed in BPMN files")
    return tree


def _invalid(message: str, element: str | None = None, params: dict | None = None, **details) -> InvalidProcess:
    """A refusal naming the element (id, and name when known): "{where}: {problem}", each part a message of its
    own, so that both are translated."""
    if not element:
        return InvalidProcess(message, params, **details)
    return InvalidProcess("{where}: {problem}", {"where": wording.named(element, details.get("name")),
                                                  "problem": Msg(message, params)}, element=element, **details)


# What the engine's parser and the BPMN schema say, in the hall's words (each template is translated)
_ENGINE_REFUSALS = (
    (r"No start event found", Msg("the process has no start event; draw one where its cases begin")),
    (r"Non-default exclusive outgoing sequence flow without condition",
     Msg("a flow leaving this exclusive gateway has no condition and is not its default flow; give it a "
         "condition or make it the default")),
    (r"A SubWorkflow Must contain an End event", Msg("the sub-process has no end event; draw one where it ends")),
    (r"Element '\{[^}]*\}(?P<tag>\w+)': This element is not expected",
     Msg("a <{tag}> element stands where the BPMN schema does not allow it; save the file again from the modeler")),
    (r"Element '\{[^}]*\}(?P<tag>\w+)', attribute '(?P<attribute>\w+)': '(?P<value>[^']*)' is not a valid value "
     r"of the atomic type 'xs:ID'",
     Msg("the {attribute} '{value}' of a <{tag}> element is not a valid XML id (it must start with a letter or _, "
         "and be unique in the file)")),
    (r"Element '\{[^}]*\}(?P<tag>\w+)': Missing child element",
     Msg("a <{tag}> element lacks a part the BPMN schema requires; save the file again from the modeler")),
    (r"Data Store with name (?P<name>.+?) has no implementation",
     Msg("the data store '{name}' has nothing behind it here; take it out of the diagram, or keep the values in "
         "the case data")),
)


def engine_refusal(text: str) -> tuple[str, dict[str, str]]:
    """A refusal of the engine's parser as a template with its values; an unknown one is quoted whole."""
    for pattern, template in _ENGINE_REFUSALS:
        match = re.search(pattern, text)
        if match:
            return template, match.groupdict()
    return Msg("the engine cannot read the process: {detail}"), {"detail": text.strip().rstrip(".")}


def _check_duration(text: str, element: str) -> None:
    try:
        parse_duration(text)
    except ValueError:
        raise _invalid("the time limit '{text}' cannot be read; write a working-time duration such as P3D or PT4H",
                       element, {"text": text}) from None


def _check_expression(text: str, element: str) -> None:
    try:
        compile_script(text, "eval")
    except ScriptRefused as exc:
        raise _invalid("expression refused: {reason}", element, {"reason": str(exc)}) from None


@dataclass
class _Assigning:
    """How parse_definition decides who works each task: from the stored assignments of a deployed version,
    or (at deploy) from the file, the catalogue's names and aliases, the users and a default department."""

    stored: dict[str, dict] | None = None
    default_department: str | None = None
    process_key: str = ""
    user_department: Callable[[str], str | None] = staticmethod(lambda _name: None)
    elements: dict[str, etree._Element] = field(default_factory=dict)
    resolved: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def department_of(self, task_spec, properties: dict[str, str]) -> tuple[str, str | None]:
        element = task_spec.bpmn_id
        if self.stored is not None and element in self.stored:
            done = self.stored[element]
            if done.get("department") not in catalogue().departments:
                raise _invalid("the department {department} of this deployed version no longer exists",
                               element, {"department": done.get("department")})
            return done["department"], done.get("assignee")
        cat = catalogue()
        try:
            chosen, warnings = assignment.resolve(
                element, task_spec.lane, properties.get("department"),
                assignment.candidates(self.elements.get(element)), cat.department_named, self.user_department,
                self.default_department, list(cat.departments))
        except assignment.Unassigned as exc:
            raise _invalid(exc.template, element, exc.params, name=task_spec.bpmn_name) from None
        self.warnings += warnings
        self.resolved[element] = {"department": chosen.department, "assignee": chosen.assignee, "how": chosen.how}
        return chosen.department, chosen.assignee


OPTIONS = "@options"  # in a version's stored assignments: how its file was read (no element id holds an @)
FROM_CATALOGUE = "catalogue"  # a budget property that takes its limit from the catalogue (by region and kind)
UNTIL = "until:"  # case_budget="until:FIELD": the case is due at close of business of the date in FIELD


def _catalogue_limit(process_key: str, step: str, response: bool = False) -> str:
    matter = catalogue().matter_for_process(process_key)
    limit = (matter.response_limit(step) if response else matter.step_limit(step)) if matter else None
    if limit is None and response:
        raise _invalid("respond_within=\"catalogue\" but the catalogue gives this step no response limit (a "
                       "matter of process {process} with response_limits.{step})", step,
                       {"process": process_key, "step": step})
    if limit is None:
        raise _invalid("budget=\"catalogue\" but the catalogue gives this step no limit (a matter of process "
                       "{process} with step_limits.{step})", step, {"process": process_key, "step": step})
    _check_duration(limit, step)
    return limit


def _step_for(task_spec, properties: dict[str, str], kind: str, assigning: _Assigning) -> Step:
    cat = catalogue()
    element = task_spec.bpmn_id
    code, assignee = assigning.department_of(task_spec, properties)
    dept = cat.departments[code]
    budget, budget_expr = properties.get("budget"), properties.get("budget_expr")
    if budget == FROM_CATALOGUE:  # the limit the catalogue gives this step in the region in force
        budget = _catalogue_limit(assigning.process_key, element)
    where = wording.named(element, task_spec.bpmn_name)
    raw = assigning.elements.get(element)
    if not budget and not budget_expr:
        budget = modeler_forms.due_budget(raw, where, assigning.warnings)
    if budget:
        _check_duration(budget, element)
    if budget_expr:
        _check_expression(budget_expr, element)
    respond_within = properties.get("respond_within")
    if respond_within == FROM_CATALOGUE:
        respond_within = _catalogue_limit(assigning.process_key, element, response=True)
    elif respond_within:
        _check_duration(respond_within, element)
    try:
        fields = tuple(fields_from_properties(properties))
    except ValueError as exc:
        raise _invalid(str(exc), element) from None
    declared = {f.name for f in fields}  # a spiffworkflow field wins over the modeler's of the same name
    fields += tuple(f for f in modeler_forms.modeler_fields(raw, where, assigning.warnings) if f.name not in declared)
    return_to = tuple(t.strip() for t in properties.get("return_to", "").split(",") if t.strip())
    cc = tuple(t.strip() for t in properties.get("cc", "").split(",") if t.strip())
    return Step(element, task_spec.bpmn_name or element, kind, task_spec.lane, dept.code,
                properties.get("role", dept.role), budget, budget_expr, fields, return_to, cc,
                (properties.get("position") or "").strip()[:40] or None, assignee, respond_within or None)


def _check_scripts(spec: BpmnProcessSpec) -> None:
    for task_spec in spec.task_specs.values():
        for attr in ("script", "prescript", "postscript"):
            source = getattr(task_spec, attr, None)
            if source:
                try:
                    compile_script(source, "exec")
                except ScriptRefused as exc:
                    raise _invalid("script refused: {reason}", task_spec.bpmn_id, {"reason": str(exc)}) from None
        # gateway conditions: (condition, target) pairs; a condition is a spec object holding its text
        for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
            text = getattr(condition, "args", [None])[0] if condition is not None else None
            if isinstance(text, str):
                _check_expression(text, task_spec.bpmn_id)


def _check_timer(task_spec) -> None:
    """A timer's expression must compile; a literal duration must be a working-time duration."""
    expression = task_spec.event_definition.expression
    _check_expression(expression, task_spec.bpmn_id)
    if isinstance(task_spec.event_definition, WorkingDurationTimer):
        try:
            value = evaluate(expression, {})
        except Exception:  # depends on case data: checked when it runs
            return
        _check_duration(value if isinstance(value, str) else repr(value), task_spec.bpmn_id)
    elif isinstance(task_spec.event_definition, WorkingCycleTimer):
        try:
            value = evaluate(expression, {})
        except Exception:  # depends on case data: checked when it runs
            return
        try:
            _count, duration = cycle_of(value)
        except ValueError:
            raise _invalid("the timer cycle {cycle} cannot be read; write R<count>/<duration>, such as R3/PT10H",
                           task_spec.bpmn_id, {"cycle": repr(value)}) from None
        _check_duration(duration, task_spec.bpmn_id)


def _pools_refused(tree: etree._ElementTree, executable: list[str]) -> InvalidProcess:
    """Why a file does not hold exactly one executable process, and what to change."""
    processes = tree.xpath("//*[local-name()='process']")
    if executable:
        return InvalidProcess("the file holds {count} executable processes ({ids}); deploy one per file, or mark "
                              "the others isExecutable=\"false\"", {"count": len(executable),
                                                                    "ids": ", ".join(f"'{i}'" for i in executable)})
    if not processes:
        return InvalidProcess("the file holds no process (a BPMN file with a <process> element is expected)")
    off = [p for p in processes if (p.get("isExecutable") or "").strip().lower() == "false"]
    if off:
        names = ", ".join(f"'{p.get('id')}'" + (f" ({p.get('name')})" if p.get("name") else "") for p in off)
        return InvalidProcess("no process of the file is executable: {names} is marked isExecutable=\"false\" "
                              "(new pools are, in bpmn.io and Camunda Modeler); tick \"Executable\" in the "
                              "modeler's properties panel, or set isExecutable=\"true\"", {"names": names})
    return InvalidProcess("no process of the file is executable; set isExecutable=\"true\" on the one to run")


def _read_bpmn(content: bytes, warnings: list[str], code_tasks: str = "refuse") -> etree._ElementTree:
    """A BPMN file read safely and made readable by the engine (modeling/): code-bound service tasks refused,
    unbound ones plain tasks, JUEL / FEEL to Python, timers the Camunda way, foreign scripts refused."""
    tree = read_xml(content)
    warnings += tasks.read_tasks(tree, code_tasks)
    warnings += rewrite.rewrite(tree, code_tasks)
    return tree


def _check_companions(bpmn_trees: list, dmn_trees: list) -> None:
    """What a call activity calls and what a business rule task decides must be among the files deployed
    together; the refusal says which element needs which file."""
    processes = {i for t in bpmn_trees for i in t.xpath("//*[local-name()='process']/@id")}
    decisions = {i for t in dmn_trees for i in t.xpath("//*[local-name()='decision']/@id")}
    for t in bpmn_trees:
        for call in t.xpath("//*[local-name()='callActivity']"):
            wanted = call.get("calledElement")
            if wanted and wanted not in processes:
                raise _invalid("calls the process '{wanted}', which no file deployed with it holds; deploy the "
                               "files together (onewindow deploy main.bpmn called.bpmn …, a .zip, or several "
                               "files in one upload)", call.get("id"), {"wanted": wanted}, name=call.get("name"))
        for task in t.xpath("//*[local-name()='businessRuleTask']"):
            wanted = next(iter(task.xpath(".//*[local-name()='calledDecisionId']/text()")), None)
            if wanted and wanted.strip() not in decisions:
                raise _invalid("takes the decision '{wanted}', which no DMN file deployed with it holds; deploy "
                               "the DMN file together with it", task.get("id"), {"wanted": wanted.strip()},
                               name=task.get("name"))


def parse_definition(content: bytes, filename: str, default_department: str | None = None,
                     user_department: Callable[[str], str | None] | None = None,
                     assignments: dict[str, dict] | None = None,
                     companions: dict[str, str] | None = None, process_key: str | None = None,
                     code_tasks: str = "refuse") -> ProcessDefinition:
    """Read, validate and analyse a BPMN file holding one executable process (with the processes it calls).
    `companions` are the other files deployed with it: BPMN files of the processes its call activities call,
    DMN files of the decisions its business rule tasks take. `assignments` are a deployed version's (who works
    each task, as decided at its deploy); without them they are decided here."""
    task_warnings: list[str] = []
    if assignments is not None:  # how the version was deployed decides how it is read, forever
        code_tasks = (assignments.get(OPTIONS) or {}).get("code_tasks", "refuse")
    tree = _read_bpmn(content, task_warnings, code_tasks)
    others = {name: (_read_bpmn(text.encode("utf-8"), task_warnings, code_tasks)
                     if not name.lower().endswith(".dmn")
                     else read_xml(text.encode("utf-8"))) for name, text in (companions or {}).items()}
    bpmn_trees = [tree, *(t for n, t in others.items() if not n.lower().endswith(".dmn"))]
    called_ids = {c for t in bpmn_trees for c in t.xpath("//*[local-name()='callActivity']/@calledElement")}
    for t in bpmn_trees:
        for process in t.xpath("//*[local-name()='process']"):
            if process.get("id") in called_ids:
                process.set("isExecutable", "true")  # what a call activity calls runs with it
    elements = {el.get("id"): el for t in bpmn_trees for el in t.iter() if isinstance(el.tag, str) and el.get("id")}
    _check_companions(bpmn_trees, [t for n, t in others.items() if n.lower().endswith(".dmn")])
    if code_tasks != "refuse" and assignments is None:
        assigning_options = {OPTIONS: {"code_tasks": code_tasks}}
    else:
        assigning_options = {}
    assigning = _Assigning(stored=assignments, default_department=default_department,
                           user_department=user_department or (lambda _name: None), elements=elements,
                           warnings=task_warnings)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_xml(tree, filename)
        own = set(parser.get_process_ids())
        for name, other in others.items():
            if name.lower().endswith(".dmn"):
                parser.add_dmn_xml(other.getroot(), filename=name)
            else:
                parser.add_bpmn_xml(other, name)
        ids = [i for i in parser.get_process_ids() if i in own]
        roots = [i for i in ids if i not in called_ids]  # a main process with the processes it calls
        if process_key is not None and process_key in ids:
            key = process_key  # one pool of a collaboration, deployed as a process of its own
        elif len(ids) != 1 and len(roots) != 1:
            raise _pools_refused(tree, ids)
        else:
            key = ids[0] if len(ids) == 1 else roots[0]
        assigning.process_key = key
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except ValidationException as exc:
        element = getattr(exc, "id", "") or None
        template, params = engine_refusal(str(exc).split("\n")[0])
        raise _invalid(template, element, params, line=getattr(exc, "line_number", None)) from None
    except InvalidProcess:
        raise
    except Exception as exc:  # the parser raises assorted errors on odd input
        raise InvalidProcess("cannot read the process: {exc}", {"exc": exc}) from None

    steps: dict[str, Step] = {}
    start_fields: tuple[Field, ...] = ()
    case_budget = case_budget_expr = None
    outcomes: dict[str, str] = {}
    case_clock = "acceptance"
    for s in [spec, *subprocess_specs.values()]:
        _check_scripts(s)
        for task_spec in adopt_timers(s.task_specs.values()):
            _check_timer(task_spec)
        for task_spec in s.task_specs.values():
            props = (getattr(task_spec, "extensions", None) or {}).get("properties", {})
            if isinstance(task_spec, UserTask | ManualTask):  # a manual task: a person confirms it is done
                steps[task_spec.bpmn_id] = _step_for(task_spec, props, "task", assigning)
            elif isinstance(task_spec, SubWorkflowTask) and (props.get("budget") or props.get("budget_expr")):
                steps[task_spec.bpmn_id] = _step_for(task_spec, props, "stage", assigning)
            elif isinstance(task_spec, StartEvent) and s is spec:
                try:
                    start_fields = tuple(fields_from_properties(props))
                except ValueError as exc:
                    raise _invalid(str(exc), task_spec.bpmn_id) from None
                declared = {f.name for f in start_fields}
                start = wording.named(task_spec.bpmn_id, task_spec.bpmn_name, "startEvent")
                start_fields += tuple(f for f in modeler_forms.modeler_fields(
                    elements.get(task_spec.bpmn_id), start, assigning.warnings) if f.name not in declared)
                case_budget, case_budget_expr = props.get("case_budget"), props.get("case_budget_expr")
                case_clock = props.get("case_clock", "acceptance")
                if case_clock not in ("acceptance", "start"):
                    raise _invalid("case_clock: acceptance or start", task_spec.bpmn_id)
                if case_budget and case_budget.startswith(UNTIL):  # a deadline the case data gives as a date
                    wanted = case_budget[len(UNTIL):]
                    if not any(f.name == wanted and f.type == "date" for f in start_fields):
                        raise _invalid("case_budget=\"until:{field}\" needs a start field {field} of type date",
                                       task_spec.bpmn_id, {"field": wanted})
                elif case_budget == FROM_CATALOGUE:  # the matter's promised limit, by region and kind, at start
                    if catalogue().matter_for_process(key) is None:
                        raise _invalid("case_budget=\"catalogue\" but no matter of the catalogue runs process "
                                       "{process}", task_spec.bpmn_id, {"process": key})
                elif case_budget:
                    _check_duration(case_budget, task_spec.bpmn_id)
                if case_budget_expr:
                    _check_expression(case_budget_expr, task_spec.bpmn_id)
            elif isinstance(task_spec, EndEvent) and props.get("outcome"):
                outcomes[task_spec.bpmn_id] = props["outcome"]
    # what the gateways decide on and no form asks for (a stored version re-reads its file: the same fields)
    steps, start_fields, inferred = inference.infer([spec, *subprocess_specs.values()], steps, start_fields, spec)
    assigning.warnings += inferred
    if not any(step.kind == "task" for step in steps.values()):  # legitimate: a fully automatic process
        assigning.warnings.append(Msg("the process has no user task: its cases run on their own, and the window, "
                                      "worklists and progress page have no step of it to show"))
    return ProcessDefinition(key, spec.description or key, spec, subprocess_specs, steps, start_fields,
                             case_budget, case_budget_expr, outcomes, case_clock,
                             assignments if assignments is not None else {**assigning.resolved, **assigning_options},
                             assigning.warnings, dict(companions or {}), _initiator_variable(spec, elements))


def _initiator_variable(spec: BpmnProcessSpec, elements: dict[str, etree._Element]) -> str | None:
    """The variable the start event names for who started the case (camunda:initiator and its kin)."""
    for task_spec in spec.task_specs.values():
        element = elements.get(getattr(task_spec, "bpmn_id", None) or "")
        if isinstance(task_spec, StartEvent) and element is not None:
            for prefix in ("camunda", "activiti", "flowable"):
                name = element.get(f"{{{assignment.NAMESPACES[prefix]}}}initiator")
                if name and re.fullmatch(r"[A-Za-z_]\w{0,63}", name.strip()):
                    return name.strip()
    return None


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# Keyed by content hash: the parsed definition depends on the file alone, whatever row holds it.
_cache: dict[str, ProcessDefinition] = {}
_cache_lock = threading.Lock()


def _cache_key(digest: str, assignments: dict | None) -> str:
    """A parsed definition depends on the file, its stored assignments, and the region (catalogue limits)."""
    key = digest if not assignments else digest + ":" + json.dumps(assignments, sort_keys=True)
    region = catalogue().region
    return key if not region else f"{key}@{region}"


def definition_for(version: ProcessVersion) -> ProcessDefinition:
    key = _cache_key(version.content_hash, version.assignments)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = parse_definition(version.bpmn_xml.encode("utf-8"), version.filename,
                                 assignments=version.assignments, companions=version.companions,
                                 process_key=version.process_key)
        with _cache_lock:
            _cache[key] = found
    return found


_versions: dict[tuple[str, int], ProcessVersion] = {}


def cached_version(session: Session, version_id: int) -> ProcessVersion:
    """A process version row by id. Versions never change once stored, so they are kept per process
    (keyed by database too: tests reuse ids across databases)."""
    key = (str(session.get_bind().url), version_id)
    with _cache_lock:
        found = _versions.get(key)
    if found is None:
        found = session.get(ProcessVersion, version_id)
        if found is None:
            raise NotFound("no process version {version_id}", {"version_id": version_id})
        _ = found.bpmn_xml, found.companions  # deferred: load them before the row leaves the session
        session.expunge(found)
        with _cache_lock:
            _versions[key] = found
    return found


def forget_cached_versions() -> None:
    with _cache_lock:
        _versions.clear()


_LATEST = (select(ProcessVersion).where(ProcessVersion.process_key == bindparam("key"))
           .order_by(ProcessVersion.version.desc()).limit(1))


def latest_version(session: Session, key: str) -> ProcessVersion:
    version = session.scalars(_LATEST, {"key": key}).first()
    if version is None:
        raise NotFound("no process '{key}' is deployed", {"key": key})
    return version


@dataclass(frozen=True)
class Deployment:
    version: ProcessVersion
    created: bool


def check_file(content: bytes, filename: str, default_department: str | None = None,
               session: Session | None = None, companions: dict[str, str] | None = None,
               process_key: str | None = None, code_tasks: str = "refuse") -> ProcessDefinition:
    """Read and check a BPMN file (its timer expressions are tried here): done before the deploying
    transaction, so nothing is evaluated while it holds the write lock. With a session, a task the file
    gives to a named user goes to that user's list."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidProcess("the file is not UTF-8 text") from None
    # the same file read the same way gives the same definition: deploying the bundled files at every start
    # (and in every test) reads each once per process — unless a named user decided who works a task
    memo = (content_hash(content + json.dumps(companions or {}, sort_keys=True).encode()), filename,
            default_department, process_key, catalogue().region, code_tasks)
    with _cache_lock:
        found = _checked.get(memo)
    if found is not None:
        return found
    definition = parse_definition(content, filename, default_department,
                                  user_department=_user_lookup(session) if session is not None else None,
                                  companions=companions, process_key=process_key, code_tasks=code_tasks)
    if not any(a.get("how") == "user" for k, a in definition.assignments.items() if k != OPTIONS):
        with _cache_lock:
            if len(_checked) > 256:
                _checked.clear()
            _checked[memo] = definition
    return definition


_checked: dict[tuple, ProcessDefinition] = {}


def _user_lookup(session: Session) -> Callable[[str], str | None]:
    from ..models import User

    def home(username: str) -> str | None:
        return session.scalar(select(User.department).where(User.username == username, User.active.is_(True)))
    return home


def deploy(session: Session, content: bytes, filename: str, actor: str = "system",
           definition: ProcessDefinition | None = None, as_key: str | bool | None = None) -> Deployment:
    """Store a new version of the process when the content changed; refuse a broken file whole.
    Pass the `definition` from `check_file()` so the transaction only writes. A file whose process id
    already belongs to another process (another file name and another process name: modelers give every
    new file "Process_1") is refused unless `as_key` confirms it as that process's next version."""
    if definition is None:
        definition = check_file(content, filename)
    text = content.decode("utf-8")
    digest = content_hash(content + b"".join(f"\0{n}\0{t}".encode() for n, t in
                                             sorted(definition.companions.items())))
    current = session.scalars(
        select(ProcessVersion).where(ProcessVersion.process_key == definition.key)
        .order_by(ProcessVersion.version.desc()).limit(1).with_for_update()
    ).first()
    if current is not None and current.content_hash == digest and \
            _cache_key(digest, current.assignments) == _cache_key(digest, definition.assignments or None):
        return Deployment(current, False)
    if current is not None and as_key not in (True, definition.key) and \
            Path(current.filename).name != Path(filename).name and current.name != definition.name:
        raise InvalidProcess("the process id '{key}' belongs to another process already ('{name}', version "
                             "{version}, from {filename}); give this process its own id in the modeler, or "
                             "confirm it as that process's next version (onewindow deploy --as {key})",
                             {"key": definition.key, "name": current.name, "version": current.version,
                              "filename": current.filename}, element=definition.key)
    number = (session.scalar(select(func.max(ProcessVersion.version))
                             .where(ProcessVersion.process_key == definition.key)) or 0) + 1
    version = ProcessVersion(process_key=definition.key, version=number, name=definition.name,
                             content_hash=digest, bpmn_xml=text, filename=Path(filename).name,
                             deployed_by=actor, assignments=definition.assignments or None,
                             companions=definition.companions or None)
    session.add(version)
    session.flush()
    with _cache_lock:
        _cache[_cache_key(digest, version.assignments)] = definition
    return Deployment(version, True)


MAX_BUNDLE_FILES = 50


def bundle(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes, dict[str, str], str | None]]:
    """Several files deployed together (or a .zip of them): each BPMN file whose process is not called by
    another of them, with the others as its companions (the processes it calls, the DMN decisions).
    A file only called by the others, and every DMN file, is deployed as a companion, not on its own. A
    collaboration of several executable pools that do not call one another deploys each pool as a process
    of its own (the last item names it; None: the file's one main process)."""
    import zipfile

    expanded: list[tuple[str, bytes]] = []
    for name, content in files:
        if name.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as archive:
                    members = [m for m in archive.infolist() if not m.is_dir() and
                               m.filename.lower().endswith((".bpmn", ".xml", ".dmn"))]
                    if len(members) > MAX_BUNDLE_FILES or sum(m.file_size for m in members) > 20 * MAX_BPMN_BYTES:
                        raise InvalidProcess("the archive holds too many or too large files (at most {n} files)",
                                             {"n": MAX_BUNDLE_FILES})
                    expanded += [(Path(m.filename).name, archive.read(m)) for m in members]
            except zipfile.BadZipFile:
                raise InvalidProcess("{name} is not a zip archive one can read", {"name": name}) from None
        else:
            expanded.append((name, content))
    if len(expanded) > MAX_BUNDLE_FILES:
        raise InvalidProcess("at most {n} files at once", {"n": MAX_BUNDLE_FILES})
    texts: dict[str, str] = {}
    for name, content in expanded:
        try:
            texts[name] = content.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidProcess("{name}: the file is not UTF-8 text", {"name": name}) from None
    calls: dict[str, set[str]] = {}  # file → the process and decision ids it needs
    provides: dict[str, set[str]] = {}  # file → the process or decision ids it holds
    for name, text in texts.items():
        tree = read_xml(text.encode("utf-8"))
        if name.lower().endswith(".dmn"):
            provides[name] = set(tree.xpath("//*[local-name()='decision']/@id"))
            continue
        provides[name] = set(tree.xpath("//*[local-name()='process']/@id"))
        calls[name] = set(tree.xpath("//*[local-name()='callActivity']/@calledElement")) | set(
            tree.xpath("//*[local-name()='calledDecisionId']/text()")) | {
            v for attr in ("decisionRef", "decisionTableReferenceKey")
            for v in tree.xpath(f"//*[local-name()='businessRuleTask']/@*[local-name()='{attr}']")}
    called = set().union(*calls.values()) if calls else set()

    def needed(name: str, seen: set[str]) -> set[str]:
        for wanted in calls.get(name, set()):
            for other, ids in provides.items():
                if other not in seen and other != name and wanted in ids:
                    seen.add(other)
                    needed(other, seen)
        return seen

    out = []
    for name in calls:
        if provides[name] and provides[name] <= called and len(calls) > 1:
            continue  # only called by the others: it travels with them
        companions = {n: texts[n] for n in sorted(needed(name, set()))}
        tree = read_xml(texts[name].encode("utf-8"))
        pools = [p.get("id") for p in tree.xpath("//*[local-name()='process']")
                 if (p.get("isExecutable") or "").lower() == "true" and p.get("id") not in called]
        if len(pools) > 1:
            out += [(name, texts[name].encode("utf-8"), companions, pool) for pool in pools]
        else:
            out.append((name, texts[name].encode("utf-8"), companions, None))
    return out


def bundled_files() -> list[Path]:
    return sorted(BPMN_DIR.glob("*.bpmn"))
