"""Time for OneWindow: the one clock, the working calendar and SLA maths. No models, no Flask."""
