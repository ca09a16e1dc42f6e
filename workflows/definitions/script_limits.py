"""Budgets for BPMN scripts and expressions: CPU time and memory per evaluation, and sizes refused
before they are built.

A BPMN file is untrusted input, and its scripts run inside the web workers and the scheduler: a loop
that never ends or a string of 2 GB must end in a clear error, not a stalled hall. Python cannot stop
a thread from outside, so the checks run inside the script: the compiler (`scripting.py`) puts a
`_tick_()` at the top of every loop body and function, wraps every iterator, and sends the operators
that can build huge values in one step (`*`, `**`, `<<`, `+`, `%`) through `binop()`, which refuses
results past the size limits before computing them. `tick()` measures the thread's CPU time and,
every few milliseconds of it, the process's resident memory against what it was when the evaluation
began.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CPU_SECONDS = float(os.environ.get("ONEWINDOW_SCRIPT_CPU_SECONDS", "1"))
MEMORY_MB = int(os.environ.get("ONEWINDOW_SCRIPT_MEMORY_MB", "256"))
MAX_ITEMS = 10_000_000       # characters of a string, items of a list or tuple built in one step
MAX_INT_BITS = 100_000       # about 30,000 decimal digits
MAX_RANGE = 1_000_000
MAX_FORMAT_WIDTH = 10_000
_MEMORY_CHECK_EVERY = 0.002  # seconds of CPU time between two looks at the resident memory
# A busy script holds the GIL: another thread of the process (a request, a write) that returns from
# the database waits a whole switch interval (5 ms) for it after every call. Stepping aside briefly
# every millisecond of script time keeps those threads at their own speed.
_YIELD_EVERY = 0.001
_YIELD_FOR = 0.00005
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ScriptLimitExceeded(Exception):
    """A script or expression went past its budget (time, memory or the size of a value)."""


class _Budget:
    __slots__ = ("deadline", "rss_start", "next_memory_check", "next_yield", "tripped", "cpu", "memory")

    def __init__(self, cpu: float, memory_mb: int) -> None:
        started = time.thread_time()
        self.cpu, self.memory = cpu, memory_mb
        self.deadline = started + cpu
        self.rss_start = _rss()
        self.next_memory_check = started + _MEMORY_CHECK_EVERY
        self.next_yield = started + _YIELD_EVERY
        self.tripped: ScriptLimitExceeded | None = None


_local = threading.local()


def _rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: the size guards still hold
        return 0


@contextmanager
def budget(cpu_seconds: float | None = None, memory_mb: int | None = None) -> Iterator[None]:
    """One evaluation's budget. Nested evaluations run inside the outer one's."""
    if getattr(_local, "budget", None) is not None:
        yield
        return
    current = _local.budget = _Budget(CPU_SECONDS if cpu_seconds is None else cpu_seconds,
                                      MEMORY_MB if memory_mb is None else memory_mb)
    try:
        yield
    finally:
        _local.budget = None
    if current.tripped is not None:  # the script caught the error and went on: it is refused all the same
        raise current.tripped


def _trip(current: _Budget, message: str) -> None:
    current.tripped = current.tripped or ScriptLimitExceeded(message)
    raise current.tripped


def tick() -> None:
    current = getattr(_local, "budget", None)
    if current is None:
        return
    if current.tripped is not None:
        raise current.tripped
    used = time.thread_time()
    if used > current.deadline:
        _trip(current, f"stopped after {current.cpu:g} s of CPU time (the limit for one script)")
    if used >= current.next_yield:
        current.next_yield = used + _YIELD_EVERY
        time.sleep(_YIELD_FOR)
    if used >= current.next_memory_check:
        current.next_memory_check = used + _MEMORY_CHECK_EVERY
        if _rss() - current.rss_start > current.memory * 1024 * 1024:
            _trip(current, f"stopped after using more than {current.memory} MB of memory (the limit for one script)")


def refuse(message: str) -> None:
    current = getattr(_local, "budget", None)
    if current is not None:
        _trip(current, message)
    raise ScriptLimitExceeded(message)


class _TickingIterator:
    __slots__ = ("inner",)

    def __init__(self, inner: Iterator) -> None:
        self.inner = inner

    def __iter__(self):
        return self

    def __next__(self):
        tick()
        return next(self.inner)


def guarded_iter(obj: Any) -> _TickingIterator:
    return _TickingIterator(iter(obj))


_SEQUENCES = (str, bytes, bytearray, list, tuple)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, _SEQUENCES) else None


def _int_bits(value: Any) -> int | None:
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else None


def _check_repeat(seq: Any, times: Any) -> None:
    if _size(seq) is not None and isinstance(times, int) and len(seq) * max(times, 0) > MAX_ITEMS:
        refuse(f"a value of {len(seq) * times:,} items is too large (at most {MAX_ITEMS:,})")


_PERCENT_FORMAT = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_format_spec(spec: str) -> None:
    for number in re.findall(r"\d+", spec):
        if int(number) > MAX_FORMAT_WIDTH:
            refuse(f"a format width of {number} is too large (at most {MAX_FORMAT_WIDTH:,})")


def _check_percent(template: str | bytes) -> None:
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    for width, precision in _PERCENT_FORMAT.findall(text):
        if "*" in (width, precision):
            refuse("'*' widths are not allowed in % formatting")
        check_format_spec(f"{width}.{precision}")


def _check_pow(base: Any, exponent: Any) -> None:
    bits = _int_bits(base)
    if bits is None or not isinstance(exponent, int) or exponent <= 1 or abs(base) <= 1:
        return
    if bits * exponent > MAX_INT_BITS:
        refuse(f"{base}**{exponent} is too large a number (at most {MAX_INT_BITS:,} bits)")


def binop(op: str, left: Any, right: Any) -> Any:
    """The operators that can build a huge value in one step, each checked before it runs."""
    if op == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
        lb, rb = _int_bits(left), _int_bits(right)
        if lb is not None and rb is not None and lb + rb > MAX_INT_BITS:
            refuse(f"a product of {lb + rb:,} bits is too large (at most {MAX_INT_BITS:,})")
        return left * right
    if op == "**":
        _check_pow(left, right)
        return left ** right
    if op == "<<":
        lb = _int_bits(left)
        if lb is not None and isinstance(right, int) and lb + right > MAX_INT_BITS:
            refuse(f"a shift to {lb + right:,} bits is too large (at most {MAX_INT_BITS:,})")
        return left << right
    if op == "+":
        ls, rs = _size(left), _size(right)
        if ls is not None and rs is not None and ls + rs > MAX_ITEMS:
            refuse(f"a value of {ls + rs:,} items is too large (at most {MAX_ITEMS:,})")
        return left + right
    if op == "%":
        if isinstance(left, str | bytes):
            _check_percent(left)
        return left % right
    raise ValueError(op)


def guarded_pow(base: Any, exponent: Any, modulo: Any = None) -> Any:
    if modulo is None:
        _check_pow(base, exponent)
        return pow(base, exponent)
    return pow(base, exponent, modulo)


def guarded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        refuse(f"a range of {len(result):,} numbers is too long (at most {MAX_RANGE:,})")
    return result


def _width_guard(method, position: int = 0):
    def guarded(*args, **kwargs):
        width = args[position] if len(args) > position else next(iter(kwargs.values()), 0)
        if isinstance(width, int) and width > MAX_ITEMS:
            refuse(f"a width of {width:,} is too large (at most {MAX_ITEMS:,})")
        return method(*args, **kwargs)
    return guarded


def _guarded_join(method):
    def guarded(iterable):
        items = list(iterable)
        total = sum(len(i) for i in items if isinstance(i, str | bytes)) + len(method.__self__) * len(items)
        if total > MAX_ITEMS:
            refuse(f"a joined value of {total:,} characters is too large (at most {MAX_ITEMS:,})")
        return method(items)
    return guarded


def _guarded_replace(text):
    def guarded(old, new, count=-1):
        hits = text.count(old) if count < 0 else min(count, text.count(old))
        if len(text) + hits * (len(new) - len(old)) > MAX_ITEMS:
            refuse(f"the replaced value would exceed {MAX_ITEMS:,} characters")
        return text.replace(old, new, count)
    return guarded


def _guarded_expandtabs(text):
    def guarded(tabsize=8):
        if isinstance(tabsize, int) and (text.count("\t") + 1) * max(tabsize, 0) + len(text) > MAX_ITEMS:
            refuse(f"the expanded value would exceed {MAX_ITEMS:,} characters")
        return text.expandtabs(tabsize)
    return guarded


def guard_method(obj: Any, name: str, method: Any) -> Any:
    """String methods that can build a huge value from small arguments, checked first (RestrictedPython
    itself refuses `str.format`)."""
    if not isinstance(obj, str | bytes | bytearray):
        return method
    if name in ("ljust", "rjust", "center", "zfill"):
        return _width_guard(method)
    if name == "join":
        return _guarded_join(method)
    if name == "replace":
        return _guarded_replace(obj)
    if name == "expandtabs":
        return _guarded_expandtabs(obj)
    return method
