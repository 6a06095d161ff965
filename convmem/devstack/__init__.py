"""The local development stack: a Kafka broker in KRaft mode and a Postgres server started
from this machine's packages, their ports and generated secrets written to
`.convmem/stack.env` (stack). Used by the CLI, the tests and the benchmarks; no role imports
it in production. It may import settings and home; nothing else in the platform imports it."""
