"""HTTP API, command line and composition root of OneWindow."""
