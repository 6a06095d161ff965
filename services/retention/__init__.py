"""retention: purges turns past the retention window from Postgres and the vector index."""
