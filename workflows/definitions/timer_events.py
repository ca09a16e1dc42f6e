"""BPMN timers in working time, on the project's clock.

A duration timer (`timeDuration`, e.g. "PT3H" or "P2D") counts working time like every budget in the
hall; a date timer (`timeDate`) is an instant. Both ask `timers.clock.now()`, never the system clock,
so the manual clock drives them in tests and demos. The calendar in force is set around each engine
run with `use_calendar()`; a timer whose year has no schedule is not placed until the year is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from timers.calendar import CalendarMissing, WorkingCalendar
from timers.clock import SHANGHAI, now
from timers.durations import parse_duration

_calendar: ContextVar[WorkingCalendar | None] = ContextVar("onewindow_calendar", default=None)


@contextmanager
def use_calendar(calendar: WorkingCalendar) -> Iterator[None]:
    token = _calendar.set(calendar)
    try:
        yield
    finally:
        _calendar.reset(token)


class WorkingDurationTimer(DurationTimerEventDefinition):
    def has_fired(self, my_task) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            calendar = _calendar.get()
            if calendar is None:
                raise RuntimeError("a working-time timer ran without a calendar in force")
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            try:
                due = calendar.due(now(), parse_duration(expression))
            except CalendarMissing:
                return False  # placed on a later run, once the year is loaded
            event_value = due.isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


def _instant(value) -> str:
    """A timer date as an instant: a bare date (a date field of a form) is the start of that day in the hall."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, str) and len(value.strip()) == 10:
        day = date.fromisoformat(value.strip())
        return datetime.combine(day, time(0), SHANGHAI).isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class ClockTimeDateTimer(TimeDateEventDefinition):
    def has_fired(self, my_task) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = _instant(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


def cycle_of(text: str) -> tuple[int, str]:
    """`R3/PT10H` → (3, "PT10H"); `R/PT1H` repeats without end (-1). A start instant, if given, is not used:
    the cycle counts from when the timer starts waiting."""
    if not isinstance(text, str) or not text.startswith("R") or "/" not in text:
        raise ValueError(f"cannot read the timer cycle {text!r} (expected R<n>/<duration>)")
    head, *rest = text.split("/")
    return (int(head[1:]) if head[1:] else -1), rest[-1]


class WorkingCycleTimer(CycleTimerEventDefinition):
    """A repeating timer (`R3/PT10H`), each repetition counted in working time on the project's clock."""

    def cycle_complete(self, my_task) -> bool:
        event_value = my_task._get_internal_data("event_value")
        calendar = _calendar.get()
        if calendar is None:
            raise RuntimeError("a working-time timer ran without a calendar in force")
        if event_value is None:
            cycles, duration = cycle_of(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            try:
                first = calendar.due(now(), parse_duration(duration))
            except CalendarMissing:
                return False
            event_value = {"cycles": cycles, "next": first.isoformat(), "duration": duration}
        ready = False
        if event_value["cycles"] != 0:
            due = datetime.fromisoformat(event_value["next"])
            if due <= now():
                try:
                    event_value["next"] = calendar.due(due, parse_duration(event_value["duration"])).isoformat()
                except CalendarMissing:
                    pass  # the next repetition is placed once the year is loaded
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        my_task._set_internal_data(event_value=event_value)
        return ready


def _adopt(definition) -> bool:
    """Switch one parsed timer definition to its working-time kind; whether it was a timer."""
    if type(definition) is DurationTimerEventDefinition:
        definition.__class__ = WorkingDurationTimer
    elif type(definition) is TimeDateEventDefinition:
        definition.__class__ = ClockTimeDateTimer
    elif type(definition) is CycleTimerEventDefinition:
        definition.__class__ = WorkingCycleTimer
    else:
        return False
    return True


def adopt_timers(task_specs) -> list:
    """Switch the parsed timer definitions to working-time ones; return the specs that have a timer. An
    event-based gateway holds its events' definitions (a timer among them is switched too)."""
    found = []
    for task_spec in task_specs:
        definition = getattr(task_spec, "event_definition", None)
        if isinstance(definition, MultipleEventDefinition):
            for inner in definition.event_definitions:
                _adopt(inner)
            continue
        if type(definition) is DurationTimerEventDefinition:
            definition.__class__ = WorkingDurationTimer
            found.append(task_spec)
        elif type(definition) is TimeDateEventDefinition:
            definition.__class__ = ClockTimeDateTimer
            found.append(task_spec)
        elif type(definition) is CycleTimerEventDefinition:
            definition.__class__ = WorkingCycleTimer
            found.append(task_spec)
    return found


def _has_timer(definition) -> bool:
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return isinstance(definition, TimerEventDefinition)


def waiting_timer_tasks(workflow) -> list:
    return [t for t in workflow.event_manager.tasks.values() if _has_timer(t.task_spec.event_definition)]


def timer_due_instants(workflow) -> list[datetime]:
    instants = []
    for task in waiting_timer_tasks(workflow):
        value = task._get_internal_data("event_value")
        if isinstance(value, dict) and value.get("cycles") != 0 and isinstance(value.get("next"), str):
            value = value["next"]
        if isinstance(value, str):
            instants.append(TimerEventDefinition.get_datetime(value))
    return instants


def shift_timers(workflow, calendar: WorkingCalendar, minutes: int) -> None:
    """Move every waiting timer out by `minutes` of working time (after a pause)."""
    for task in waiting_timer_tasks(workflow):
        value = task._get_internal_data("event_value")
        if isinstance(value, dict) and isinstance(value.get("next"), str):
            moved = calendar.add_minutes(TimerEventDefinition.get_datetime(value["next"]), minutes)
            task._set_internal_data(event_value={**value, "next": moved.isoformat()})
        elif isinstance(value, str) and not task._get_internal_data("event_fired", False):
            moved = calendar.add_minutes(TimerEventDefinition.get_datetime(value), minutes)
            task._set_internal_data(event_value=moved.isoformat())
