"""Supervision: SLA clocks and alerts, the board, statistics and their tallies, 督办, alert delivery, incidents,
integrity checks, the periodic jobs."""
