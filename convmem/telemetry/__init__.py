"""Telemetry: what a process says about itself. The Prometheus metrics every layer counts into
(metrics) and the JSON logs with repeats folded (logs). The lowest of the platform's folders:
it imports settings at most, so delivery, adapters and ops can all count into it."""
