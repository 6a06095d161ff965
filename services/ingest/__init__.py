"""ingest: the HTTP edge. Accepts messages (HTTP and WhatsApp), answers 202 once Kafka has
the event, and serves the read API."""
