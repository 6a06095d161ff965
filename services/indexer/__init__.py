"""indexer: records turns in Postgres (record) and embeds them into the vector index (embed)."""
