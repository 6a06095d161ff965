"""convmem platform: settings, adapters (Postgres, vector index, embedder, chat model,
Kafka delivery), the local stack and the CLI. Domain logic lives in `services/`."""
