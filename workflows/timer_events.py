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
from datetime import datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from timers.calendar import CalendarMissing, WorkingCalendar
from timers.clock import now
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


class ClockTimeDateTimer(TimeDateEventDefinition):
    def has_fired(self, my_task) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


def adopt_timers(task_specs) -> list:
    """Switch the parsed timer definitions to working-time ones; return the specs that have a timer."""
    found = []
    for task_spec in task_specs:
        definition = getattr(task_spec, "event_definition", None)
        if type(definition) is DurationTimerEventDefinition:
            definition.__class__ = WorkingDurationTimer
            found.append(task_spec)
        elif type(definition) is TimeDateEventDefinition:
            definition.__class__ = ClockTimeDateTimer
            found.append(task_spec)
    return found


def waiting_timer_tasks(workflow) -> list:
    return [t for t in workflow.event_manager.tasks.values()
            if isinstance(t.task_spec.event_definition, TimerEventDefinition)]


def timer_due_instants(workflow) -> list[datetime]:
    instants = []
    for task in waiting_timer_tasks(workflow):
        value = task._get_internal_data("event_value")
        if isinstance(value, str):
            instants.append(TimerEventDefinition.get_datetime(value))
    return instants


def shift_timers(workflow, calendar: WorkingCalendar, minutes: int) -> None:
    """Move every waiting timer out by `minutes` of working time (after a pause)."""
    for task in waiting_timer_tasks(workflow):
        value = task._get_internal_data("event_value")
        if isinstance(value, str) and not task._get_internal_data("event_fired", False):
            moved = calendar.add_minutes(TimerEventDefinition.get_datetime(value), minutes)
            task._set_internal_data(event_value=moved.isoformat())
