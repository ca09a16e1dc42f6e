"""Processes as the hall deploys and runs them: reading and checking BPMN (and files from other modelers), the
engine, sandboxed scripts, timers in working time, forms, diagrams, the catalogue."""
