"""Operations: what orchestrators and operators ask a running process. Readiness and liveness
probes (probes, liveness), consumer lag read from Kafka (lag, consumer_lag), and the listener
that serves /metrics, /healthz and /readyz for processes without the HTTP edge (listener).
It sits above the delivery layer (it watches its consumers and reads its dead letters) and
telemetry; nothing in the platform below it imports it."""
