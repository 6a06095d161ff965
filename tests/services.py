"""Where the tests find Kafka and Postgres: environment variables first; else containers
when a Docker engine answers; else the project's own local stack (started if needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convmem.settings import ExternalServices, StackSettings


@dataclass
class Endpoints:
    kafka_bootstrap: str
    database_url: str
    cleanup: Any = None


def _docker_engine() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def resolve() -> Endpoints:
    ext = ExternalServices()
    if ext.kafka_bootstrap and ext.database_url:
        return Endpoints(ext.kafka_bootstrap, ext.database_url.get_secret_value())
    if _docker_engine():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        kafka = KafkaContainer().with_kraft().start()
        pg = PostgresContainer("postgres:16").start()
        url = pg.get_connection_url().replace("+psycopg2", "")

        def stop() -> None:
            kafka.stop()
            pg.stop()

        return Endpoints(kafka.get_bootstrap_server(), url, stop)
    from convmem.devstack.stack import Stack

    values = Stack(StackSettings(), ext).up()
    return Endpoints(values["CONVMEM_KAFKA_BOOTSTRAP"], values["CONVMEM_DATABASE_URL"])
