"""JUEL (`${…}`, `#{…}`, Camunda 7, Flowable, Activiti) and FEEL (`=…`, Camunda 8) expressions, translated
once at deploy into the Python that OneWindow's sandbox runs (RestrictedPython, with its time and size
budgets). Python expressions stay as they are.

The subset (anything else is refused at deploy, quoting the expression):
- variables and paths: `amount`, `order.total` (a path reads the case data's nested values);
- literals: numbers, 'strings' and "strings", true, false, null;
- comparisons: == != < > <= >= and JUEL's eq ne lt gt le ge; FEEL's single `=` is equality;
- logic: and, or, not, && || !, JUEL `empty x` (missing, null or empty), FEEL `x = null`;
- arithmetic: + - * / % and JUEL's div, mod; parentheses;
- functions: JUEL `execution.getVariable("x")` and bpmn-engine's `environment.variables.x` (the variable
  x); FEEL `not(…)`, `count(list)`,
  `string length(s)`, `contains(s, part)`, `starts with(s, part)`, `ends with(s, part)`, `upper case(s)`,
  `lower case(s)`.
"""

from __future__ import annotations

import keyword
import re

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!+\-*/%(),=])
  | (?P<name>[A-Za-z_\u4e00-\u9fff][\w\u4e00-\u9fff]*(?:\.[A-Za-z_\u4e00-\u9fff][\w\u4e00-\u9fff]*)*)
""", re.X)

WORDS = {"and": "and", "or": "or", "not": "not", "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=",
         "ge": ">=", "div": "/", "mod": "%", "true": "True", "false": "False", "null": "None"}
OPERATORS = {"&&": "and", "||": "or", "!": "not"}
# FEEL's functions whose names hold a space are joined before tokenizing
FEEL_NAMES = {"string length": "string_length", "starts with": "starts_with", "ends with": "ends_with",
              "upper case": "upper_case", "lower case": "lower_case"}
FUNCTIONS = {
    "count": lambda a: f"len({a[0]})",
    "string_length": lambda a: f"len({a[0]})",
    "contains": lambda a: f"({a[1]} in {a[0]})",
    "starts_with": lambda a: f"str({a[0]}).startswith({a[1]})",
    "ends_with": lambda a: f"str({a[0]}).endswith({a[1]})",
    "upper_case": lambda a: f"str({a[0]}).upper()",
    "lower_case": lambda a: f"str({a[0]}).lower()",
    "not": lambda a: f"(not {a[0]})",
}
ARITY = {"count": 1, "string_length": 1, "contains": 2, "starts_with": 2, "ends_with": 2, "upper_case": 1,
         "lower_case": 1, "not": 1}


class Unsupported(ValueError):
    """An expression outside the subset; the message says which part."""


def dialect(text: str) -> str | None:
    """"juel", "feel" or None (Python, left as it is)."""
    stripped = text.strip()
    if re.fullmatch(r"[$#]\{.*\}", stripped, re.S):
        return "juel"
    if stripped.startswith("=") and not stripped.startswith("=="):
        return "feel"
    return None


def _body(text: str, kind: str) -> str:
    stripped = text.strip()
    return stripped[2:-1] if kind == "juel" else stripped[1:]


def _path(name: str, _known: set[str] | None) -> str:
    """`order.total` → `order["total"]`: case data holds nested dictionaries, not objects. bpmn-engine's
    `environment.variables.x` is the variable x."""
    if name.startswith("environment.variables."):
        name = name.removeprefix("environment.variables.")
    head, *rest = name.split(".")
    if keyword.iskeyword(head) or head.startswith("_"):
        raise Unsupported(f"the name {head!r} is not a variable")
    if head in ("execution", "environment") and rest:
        raise Unsupported(f"{name!r} reads the other engine's own objects; read a variable by its name")
    return head + "".join(f"[{part!r}]" for part in rest)


def translate(text: str, kind: str | None = None) -> str:
    """The Python for a JUEL or FEEL expression; Unsupported when it leaves the subset."""
    kind = kind or dialect(text)
    if kind is None:
        return text
    body = _body(text, kind)
    if kind == "feel":
        for spaced, joined in FEEL_NAMES.items():
            pattern = r"\b" + spaced.replace(" ", r"\s+") + r"\s*\("
            body = re.sub(pattern, joined + "(", body)
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(body):
        match = _TOKEN.match(body, position)
        if match is None:
            raise Unsupported(f"cannot read {body[position:position + 20]!r}")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    if not tokens:
        raise Unsupported("the expression is empty")
    out, index = _sequence(tokens, 0, kind, stop=None)
    if index != len(tokens):
        raise Unsupported(f"unexpected {tokens[index][1]!r}")
    return " ".join(out)


def _sequence(tokens, index, kind, stop):
    out: list[str] = []
    while index < len(tokens):
        group, value = tokens[index]
        if stop and group == "op" and value in stop:
            return out, index
        if group == "op" and value == "(":
            inner, index = _sequence(tokens, index + 1, kind, stop={")"})
            _expect(tokens, index, ")")
            out.append("(" + " ".join(inner) + ")")
            index += 1
            continue
        if group == "op" and value == ")":
            raise Unsupported("a ')' without its '('")
        if group == "op" and value == ",":
            raise Unsupported("a ',' outside a function's arguments")
        if group == "name" and index + 1 < len(tokens) and tokens[index + 1] == ("op", "("):
            call, index = _call(tokens, index, kind)
            out.append(call)
            continue
        if group == "name" and value == "empty" and kind == "juel":
            operand, index = _operand(tokens, index + 1, kind)
            out.append(f"(not {operand})")
            continue
        if group == "name":
            if value in WORDS:
                out.append(WORDS[value])
            else:
                out.append(_path(value, None))
        elif group == "op" and value in OPERATORS:
            out.append(OPERATORS[value])
        elif group == "op" and value == "=":
            if kind != "feel":
                raise Unsupported("'=' assigns; compare with '=='")
            out.append("==")
        else:
            out.append(value)
        index += 1
    if stop:
        raise Unsupported(f"a missing {sorted(stop)[0]!r}")
    return out, index


def _operand(tokens, index, kind):
    """One operand (for JUEL's `empty`): a name, a literal or a parenthesised expression."""
    if index >= len(tokens):
        raise Unsupported("'empty' needs a value")
    group, value = tokens[index]
    if group == "op" and value == "(":
        inner, index = _sequence(tokens, index + 1, kind, stop={")"})
        _expect(tokens, index, ")")
        return "(" + " ".join(inner) + ")", index + 1
    if group == "name" and not (index + 1 < len(tokens) and tokens[index + 1] == ("op", "(")):
        return _path(value, None), index + 1
    raise Unsupported("'empty' takes a variable or a parenthesised expression")


def _call(tokens, index, kind):
    name = tokens[index][1]
    args: list[str] = []
    index += 2  # the name and its '('
    if tokens[index:index + 1] == [("op", ")")]:
        index += 1
    else:
        while True:
            part, index = _sequence(tokens, index, kind, stop={",", ")"})
            if not part:
                raise Unsupported(f"an empty argument of {name}()")
            args.append(" ".join(part))
            if tokens[index][1] == ")":
                index += 1
                break
            index += 1
    if name in ("execution.getVariable", "getVariable") and len(args) == 1:
        literal = re.fullmatch(r"""(['"])(\w+)\1""", args[0])
        if literal is None:
            raise Unsupported("getVariable() takes the variable's name in quotes")
        return literal.group(2), index
    if name not in FUNCTIONS:
        raise Unsupported(f"the function {name}() is not in the supported subset")
    if len(args) != ARITY[name]:
        raise Unsupported(f"{name}() takes {ARITY[name]} argument(s)")
    return FUNCTIONS[name](args), index


def _expect(tokens, index, value):
    if index >= len(tokens) or tokens[index][1] != value:
        raise Unsupported(f"a missing {value!r}")
