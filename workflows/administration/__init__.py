"""Administration: staff accounts, the working calendar, the clock, settings, throttles."""
