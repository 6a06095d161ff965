"""Adapters: the ports of convmem.ports implemented over real engines. Postgres for storage
(convmem.adapters.postgres), Qdrant for the vector index (vectors), ONNX or an
OpenAI-compatible API for embeddings (embedder), an OpenAI-compatible API for chat
(chat_model). Nothing is imported here, so a role pays only for the engines it uses."""
