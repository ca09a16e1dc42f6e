"""The process diagram as SVG, drawn on the server from the BPMN file's own layout (DI).

Works without JavaScript: the case page and the service guide embed the SVG directly, at its natural size
(the page scrolls it; static/diagram.js adds zoom and drag). Each flow node carries a class — done, active or
waiting — so a case's progress shows in the picture. Edges are drawn first and labels carry a white halo,
so no line crosses a name; a label the file positions (BPMNLabel) is drawn there; a pool that is drawn too
small for its own elements is grown to hold them.
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
.label{font:12px sans-serif;fill:#222;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.lanelabel{font:13px sans-serif;fill:#333}
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
        label_bounds = shape.find("bpmndi:BPMNLabel/dc:Bounds", NS)
        label = tuple(float(label_bounds.get(k, 0)) for k in ("x", "y", "width", "height")) \
            if label_bounds is not None else None
        shapes.append((ref, kinds.get(ref, ""), names.get(ref, ""), box, label))
    edges = []
    for edge in tree.xpath("//bpmndi:BPMNEdge", namespaces=NS):
        points = [(float(p.get("x")), float(p.get("y"))) for p in edge.findall("di:waypoint", NS)]
        edges.append((edge.get("bpmnElement"), points))
    if not shapes:  # a file without layout (DI): laid out left to right here
        return _auto_layout(tree, kinds, names)
    return tuple(shapes), tuple(edges)


SIZES = {"task": (110, 70), "event": (36, 36), "gateway": (50, 50)}


def _size(kind: str) -> tuple[int, int]:
    if kind.endswith("Event"):
        return SIZES["event"]
    if kind.endswith("Gateway"):
        return SIZES["gateway"]
    return SIZES["task"]


def _auto_layout(tree, kinds: dict[str, str], names: dict[str, str]):
    """Columns by the longest path from a start event (loops cut), one row per node of a column; flows drawn
    from the right of one node to the left of the next. Plain, but every element and flow is there."""
    process = tree.xpath("//bpmn:process[@isExecutable='true'] | //bpmn:process", namespaces=NS)
    if not process:
        return (), ()
    root = process[0]
    flows = [(f.get("id"), f.get("sourceRef"), f.get("targetRef"))
             for f in root.iter(f"{{{NS['bpmn']}}}sequenceFlow")]
    nodes = [el.get("id") for el in root if isinstance(el.tag, str) and el.get("id")
             and etree.QName(el).localname not in ("sequenceFlow", "laneSet", "extensionElements",
                                                  "documentation", "dataObject", "dataObjectReference",
                                                  "textAnnotation", "association", "property", "ioSpecification")]
    outgoing: dict[str, list[str]] = {n: [] for n in nodes}
    for _fid, source, target in flows:
        if source in outgoing and target in outgoing:
            outgoing[source].append(target)
    starts = [n for n in nodes if kinds.get(n) == "startEvent"] or nodes[:1]
    column: dict[str, int] = {}
    order: list[str] = []
    seen: set[str] = set()
    stack = [(n, iter(outgoing[n])) for n in reversed(starts)]
    seen.update(starts)
    while stack:  # depth first, for a topological order over the forward edges
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            order.append(node)
        elif child not in seen:
            seen.add(child)
            stack.append((child, iter(outgoing[child])))
    order.reverse()
    order += [n for n in nodes if n not in seen]
    position = {n: i for i, n in enumerate(order)}
    for n in order:
        column.setdefault(n, 0)
        for child in outgoing[n]:
            if position[child] > position[n]:
                column[child] = max(column.get(child, 0), column[n] + 1)
    rows: dict[int, int] = {}
    shapes, centre = [], {}
    for n in order:
        col = column[n]
        row = rows.get(col, 0)
        rows[col] = row + 1
        w, h = _size(kinds.get(n, "task"))
        x, y = 40 + col * 170 + (110 - w) / 2, 40 + row * 120 + (70 - h) / 2
        shapes.append((n, kinds.get(n, ""), names.get(n, ""), (x, y, w, h), None))
        centre[n] = (x, y, w, h)
    edges = []
    for fid, source, target in flows:
        if source in centre and target in centre:
            sx, sy, sw, sh = centre[source]
            tx, ty, tw, th = centre[target]
            start, end = (sx + sw, sy + sh / 2), (tx, ty + th / 2)
            if end[0] <= start[0]:  # a loop back: around underneath
                low = max(sy + sh, ty + th) + 20
                points = [(sx + sw / 2, sy + sh), (sx + sw / 2, low), (tx + tw / 2, low), (tx + tw / 2, ty + th)]
            else:
                mid = (start[0] + end[0]) / 2
                points = [start, (mid, start[1]), (mid, end[1]), end]
            edges.append((fid, points))
    return tuple(shapes), tuple(edges)


def _wrap(text: str, width: int) -> list[str]:
    """A name in up to three lines: Chinese by characters, Latin by words."""
    if sum(ord(c) > 0x2E80 for c in text) * 2 >= len(text):
        per_line = max(4, width // 13)
        return [text[i:i + per_line] for i in range(0, len(text), per_line)][:3]
    per_line, lines = max(6, width // 7), [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > per_line:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return lines[:3]


def _grown(shapes) -> list:
    """A single pool drawn smaller than its own elements (a sub-process hanging out of it) grows to hold them,
    and its lowest lane with it: the picture shows every element inside its pool."""
    pools = [s for s in shapes if s[1] == "participant"]
    if len(pools) != 1:
        return list(shapes)
    inner = [s[3] for s in shapes if s[1] not in ("participant", "lane")]
    if not inner:
        return list(shapes)
    px, py, pw, ph = pools[0][3]
    bottom = max(py + ph, max(y + h for _, y, _, h in inner) + 20)
    right = max(px + pw, max(x + w for x, _, w, _ in inner) + 20)
    lanes = [s for s in shapes if s[1] == "lane"]
    lowest = max(lanes, key=lambda s: s[3][1] + s[3][3]) if lanes else None
    out = []
    for ref, kind, name, (x, y, w, h), label in shapes:
        if kind == "participant":
            w, h = right - x, bottom - y
        elif kind == "lane":
            w = right - x
            if lowest is not None and ref == lowest[0]:
                h = bottom - y
        out.append((ref, kind, name, (x, y, w, h), label))
    return out


def _side_label(x: float, y: float, h: float, name: str) -> str:
    """A pool's or lane's name along its left edge, in as many columns as its height needs."""
    per_line = max(3, int((h - 10) // 14))
    lines = [name[i:i + per_line] for i in range(0, len(name), per_line)][:3]
    return "".join(f'<text class="lanelabel" transform="translate({x + 16 + 15 * i},{y + h / 2}) rotate(-90)" '
                   f'text-anchor="middle">{escape(line)}</text>' for i, line in enumerate(lines))


def render_svg(bpmn_xml: str, states: dict[str, str] | None = None, title: str = "") -> str:
    states = states or {}
    shapes, edges = _layout(bpmn_xml)
    if not shapes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    shapes = _grown(shapes)
    boxes = [b for *_, b, _label in shapes] + [lb for *_, lb in shapes if lb]
    min_x = min(b[0] for b in boxes) - 10
    min_y = min(b[1] for b in boxes) - 20
    max_x = max(b[0] + b[2] for b in boxes) + 10
    max_y = max(b[1] + b[3] for b in boxes) + 20
    width, height = max_x - min_x, max_y - min_y
    # the natural size: one unit of the file's layout is one pixel; the page scrolls and zooms it
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bpmn" role="img" viewBox="{min_x} {min_y} '
           f'{width} {height}" width="{width:.0f}" height="{height:.0f}" data-width="{width:.0f}" '
           f'data-height="{height:.0f}">',
           f"<title>{escape(title)}</title><style>{STYLE}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>']
    order = {"participant": 0, "lane": 1, "subProcess": 2}
    ordered = sorted(shapes, key=lambda s: order.get(s[1], 3))
    containers = [s for s in ordered if s[1] in order]
    nodes = [s for s in ordered if s[1] not in order]
    for ref, kind, name, (x, y, w, h), _label in containers:
        state = states.get(ref, "waiting")
        if kind in ("participant", "lane"):
            out.append(f'<rect class="{"pool" if kind == "participant" else "lane"}" x="{x}" y="{y}" width="{w}" '
                       f'height="{h}"/>' + _side_label(x, y, h, name))
        else:
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><rect class="sub" x="{x}" y="{y}" width="{w}" '
                       f'height="{h}" rx="10"/><text class="label" x="{x + 8}" y="{y + 16}">{escape(name)}</text></g>')
    for _ref, points in edges:  # under the nodes and their names
        if len(points) >= 2:
            path = " ".join(f"{x},{y}" for x, y in points)
            out.append(f'<polyline class="edge" points="{path}"/>')
    for ref, kind, name, (x, y, w, h), label in nodes:
        state = states.get(ref, "waiting")
        text = escape(name)
        if label:  # where the modeler put the name
            lx, ly, lw, _lh = label
            placed = f'<text class="label" x="{lx + lw / 2}" y="{ly + 12}" text-anchor="middle">{text}</text>'
        else:
            placed = None
        if kind.endswith("Event"):
            r = w / 2
            stroke = ' stroke-width="3"' if kind == "endEvent" else ""
            dash = ' stroke-dasharray="4 2"' if kind == "boundaryEvent" else ""
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><circle class="node" cx="{x + r}" cy="{y + r}" '
                       f'r="{r}"{stroke}{dash}/>' + (placed or f'<text class="label" x="{x + r}" y="{y + h + 14}" '
                                                              f'text-anchor="middle">{text}</text>') + "</g>")
        elif kind.endswith("Gateway"):
            cx, cy = x + w / 2, y + h / 2
            mark = "+" if kind == "parallelGateway" else "×"
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><polygon class="node" points="{cx},{y} '
                       f'{x + w},{cy} {cx},{y + h} {x},{cy}"/><text class="label" x="{cx}" y="{cy + 5}" '
                       f'text-anchor="middle">{mark}</text>' + (placed or f'<text class="label" x="{cx}" '
                                                                           f'y="{y - 4}" text-anchor="middle">'
                                                                           f'{text}</text>') + "</g>")
        else:
            lines = _wrap(name, int(w))
            spans = "".join(f'<tspan x="{x + w / 2}" dy="{0 if i == 0 else 14}">{escape(t)}</tspan>'
                            for i, t in enumerate(lines))
            top = y + h / 2 - 7 * (len(lines) - 1) + 4
            out.append(f'<g class="{state}" data-id="{escape(ref)}"><rect class="node" x="{x}" y="{y}" width="{w}" '
                       f'height="{h}" rx="8"/><text class="label" x="{x + w / 2}" y="{top}" '
                       f'text-anchor="middle">{spans}</text></g>')
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
