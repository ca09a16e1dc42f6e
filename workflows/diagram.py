"""The process diagram as SVG, drawn on the server from the BPMN file's own layout (DI).

Works without JavaScript: the case page and the service guide embed the SVG directly. Each flow node
carries a class — done, active or waiting — so a case's progress shows in the picture.
"""

from __future__ import annotations

from functools import lru_cache
from xml.sax.saxutils import escape

from lxml import etree

from .processes import read_xml

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC", "di": "http://www.omg.org/spec/DD/20100524/DI"}
STYLE = """
.lane{fill:#fafafa;stroke:#999;stroke-width:1}.pool{fill:none;stroke:#555;stroke-width:1.5}
.node{fill:#fff;stroke:#333;stroke-width:1.5}.edge{fill:none;stroke:#555;stroke-width:1.2;marker-end:url(#arrow)}
.done .node{fill:#e3f4e1;stroke:#2e7d32}.active .node{fill:#fff3cd;stroke:#e08600;stroke-width:3}
.label{font:12px sans-serif;fill:#222}.lanelabel{font:13px sans-serif;fill:#333}
.sub{fill:none;stroke:#333;stroke-width:1.2;rx:10}.done>.sub{fill:#f1f9f0}.active>.sub{fill:#fffaf0}
"""


@lru_cache(maxsize=64)
def _layout(bpmn_xml: str):
    tree = read_xml(bpmn_xml.encode("utf-8"))
    kinds, names = {}, {}
    for element in tree.iter():
        if not isinstance(element.tag, str) or not element.get("id"):
            continue
        tag = etree.QName(element).localname
        kinds[element.get("id")] = tag
        names[element.get("id")] = element.get("name") or ""
    shapes = []
    for shape in tree.xpath("//bpmndi:BPMNShape", namespaces=NS):
        bounds = shape.find("dc:Bounds", NS)
        if bounds is None:
            continue
        ref = shape.get("bpmnElement")
        box = tuple(float(bounds.get(k, 0)) for k in ("x", "y", "width", "height"))
        shapes.append((ref, kinds.get(ref, ""), names.get(ref, ""), box))
    edges = []
    for edge in tree.xpath("//bpmndi:BPMNEdge", namespaces=NS):
        points = [(float(p.get("x")), float(p.get("y"))) for p in edge.findall("di:waypoint", NS)]
        edges.append((edge.get("bpmnElement"), points))
    return tuple(shapes), tuple(edges)


def _wrap(text: str, width: int) -> list[str]:
    per_line = max(4, width // 13)
    return [text[i:i + per_line] for i in range(0, len(text), per_line)][:3]


def render_svg(bpmn_xml: str, states: dict[str, str] | None = None, title: str = "") -> str:
    states = states or {}
    shapes, edges = _layout(bpmn_xml)
    if not shapes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    min_x = min(b[0] for *_, b in shapes) - 10
    min_y = min(b[1] for *_, b in shapes) - 10
    max_x = max(b[0] + b[2] for *_, b in shapes) + 10
    max_y = max(b[1] + b[3] for *_, b in shapes) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bpmn" role="img" viewBox="{min_x} {min_y} '
           f'{max_x - min_x} {max_y - min_y}" width="100%" preserveAspectRatio="xMinYMin meet">',
           f"<title>{escape(title)}</title><style>{STYLE}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>']
    order = {"participant": 0, "lane": 1, "subProcess": 2}
    for ref, kind, name, (x, y, w, h) in sorted(shapes, key=lambda s: order.get(s[1], 3)):
        state = states.get(ref, "waiting")
        label = escape(name)
        if kind == "participant":
            out.append(f'<rect class="pool" x="{x}" y="{y}" width="{w}" height="{h}"/>'
                       f'<text class="lanelabel" transform="translate({x + 18},{y + h / 2}) rotate(-90)" '
                       f'text-anchor="middle">{label}</text>')
        elif kind == "lane":
            out.append(f'<rect class="lane" x="{x}" y="{y}" width="{w}" height="{h}"/>'
                       f'<text class="lanelabel" transform="translate({x + 18},{y + h / 2}) rotate(-90)" '
                       f'text-anchor="middle">{label}</text>')
        elif kind == "subProcess":
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><rect class="sub" x="{x}" y="{y}" width="{w}" '
                       f'height="{h}" rx="10"/><text class="label" x="{x + 8}" y="{y + 16}">{label}</text></g>')
        elif kind.endswith("Event"):
            r = w / 2
            stroke = ' stroke-width="3"' if kind == "endEvent" else ""
            dash = ' stroke-dasharray="4 2"' if kind == "boundaryEvent" else ""
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><circle class="node" cx="{x + r}" cy="{y + r}" '
                       f'r="{r}"{stroke}{dash}/><text class="label" x="{x + r}" y="{y + h + 14}" '
                       f'text-anchor="middle">{label}</text></g>')
        elif kind.endswith("Gateway"):
            cx, cy = x + w / 2, y + h / 2
            mark = "+" if kind == "parallelGateway" else "×"
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><polygon class="node" points="{cx},{y} '
                       f'{x + w},{cy} {cx},{y + h} {x},{cy}"/><text class="label" x="{cx}" y="{cy + 5}" '
                       f'text-anchor="middle">{mark}</text><text class="label" x="{cx}" y="{y - 4}" '
                       f'text-anchor="middle">{label}</text></g>')
        else:
            lines = _wrap(name, int(w))
            text = "".join(f'<tspan x="{x + w / 2}" dy="{0 if i == 0 else 14}">{escape(t)}</tspan>'
                           for i, t in enumerate(lines))
            top = y + h / 2 - 7 * (len(lines) - 1) + 4
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><rect class="node" x="{x}" y="{y}" width="{w}" '
                       f'height="{h}" rx="8"/><text class="label" x="{x + w / 2}" y="{top}" '
                       f'text-anchor="middle">{text}</text></g>')
    for _ref, points in edges:
        if len(points) >= 2:
            path = " ".join(f"{x},{y}" for x, y in points)
            out.append(f'<polyline class="edge" points="{path}"/>')
    out.append("</svg>")
    return "".join(out)


def case_states(workflow) -> dict[str, str]:
    """done / active for each BPMN element of a running or finished case."""
    from SpiffWorkflow.util.task import TaskState

    states: dict[str, str] = {}
    for task in workflow.get_tasks(state=TaskState.COMPLETED):
        if task.task_spec.bpmn_id:
            states[task.task_spec.bpmn_id] = "done"
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.STARTED | TaskState.WAITING):
        if task.task_spec.bpmn_id:
            states[task.task_spec.bpmn_id] = "active"
    return states
