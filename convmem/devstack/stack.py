"""The local stack: a real single-node Kafka (KRaft, Apache jars from Maven Central) and a
private PostgreSQL cluster from Debian's package, both on 127.0.0.1, state in `.convmem/`.

`up` is idempotent; it records connection settings in `.convmem/stack.env`, which every
`convmem` command and the tests read, and `status` prints them as sourceable lines."""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from convmem.home import project_root, stack_env_file, state_dir
from convmem.settings import ExternalServices, StackSettings


class StackError(RuntimeError):
    pass


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                values[k.strip()] = shlex.split(v)[0] if v.strip() else ""
    return values


@dataclass
class Stack:
    settings: StackSettings
    external: ExternalServices

    @property
    def dir(self) -> Path:
        return state_dir()

    # ---------------------------------------------------------------- kafka
    @property
    def kafka_dir(self) -> Path:
        return self.dir / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_dir / "libs"

    def fetch_kafka(self) -> None:
        """Copy the broker's runtime jars from Maven Central (once)."""
        if self.kafka_libs.is_dir() and any(self.kafka_libs.glob("kafka_2.13-*.jar")):
            return
        if shutil.which("mvn") is None:
            raise StackError("Maven (mvn) is needed once to fetch the Kafka broker jars")
        pom = project_root() / "deploy" / "kafka" / "pom.xml"
        self.kafka_libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",  # noqa: S607
             f"-DoutputDirectory={self.kafka_libs}", "-DincludeScope=runtime"],
            check=True,
        )

    def _kafka_properties(self) -> str:
        s = self.settings
        data = self.kafka_dir / "data"
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=6",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # The default 128 MB dedupe buffer is allocated at start; too much for a small heap.
            "log.cleaner.dedupe.buffer.size=16777216",
            "auto.create.topics.enable=false",
            "",
        ])

    def _kafka_up(self) -> str:
        s = self.settings
        bootstrap = f"127.0.0.1:{s.kafka_port}"
        pid_file = self.kafka_dir / "kafka.pid"
        if _pid_alive(pid_file) and _port_open(s.kafka_port):
            return bootstrap
        self.fetch_kafka()
        props = self.kafka_dir / "server.properties"
        props.write_text(self._kafka_properties())
        log4j = self.kafka_dir / "log4j2.properties"
        log4j.write_text(
            "rootLogger.level=INFO\nrootLogger.appenderRef.f.ref=F\n"
            "appender.f.type=File\nappender.f.name=F\n"
            f"appender.f.fileName={self.kafka_dir / 'server.log'}\n"
            "appender.f.layout.type=PatternLayout\nappender.f.layout.pattern=[%d] %p %m (%c)%n\n"
            "logger.kafka.name=kafka\nlogger.kafka.level=INFO\n"
            "logger.apache.name=org.apache\nlogger.apache.level=WARN\n"
        )
        java = ["java", *s.kafka_heap.split(), f"-Dlog4j2.configurationFile={log4j}",
                "-cp", str(self.kafka_libs / "*")]
        if not (self.kafka_dir / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            subprocess.run(  # noqa: S603
                # One id in 32 starts with "-": passed as "--cluster-id=<id>" so it is never read as a flag.
                [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props)],
                check=True, stdout=subprocess.DEVNULL,
            )
        out = open(self.kafka_dir / "stdout.log", "ab")
        proc = subprocess.Popen(  # noqa: S603
            [*java, "kafka.Kafka", str(props)], stdout=out, stderr=out,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + s.start_timeout_s
        log = self.kafka_dir / "server.log"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"Kafka exited with {proc.returncode}; see {log}")
            if _port_open(s.kafka_port) and log.exists() and "Kafka Server started" in log.read_text(errors="replace"):
                return bootstrap
            time.sleep(0.5)
        raise StackError(f"Kafka did not start within {s.start_timeout_s}s; see {log}")

    def _kafka_down(self) -> None:
        pid_file = self.kafka_dir / "kafka.pid"
        pid = _pid_alive(pid_file)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(120):
            if _pid_alive(pid_file) is None:
                break
            time.sleep(0.25)
        else:
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)

    # ------------------------------------------------------------- postgres
    @cached_property
    def pg_dir(self) -> Path:
        local = self.dir / "postgres"
        if os.geteuid() != 0 or self._postgres_can_reach(self.dir):
            return local
        # Running as root in a folder the `postgres` account cannot traverse (a 0700 temp dir,
        # a home directory): keep the cluster in a folder of its own, named after this checkout.
        digest = hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:12]
        return Path("/var/lib/convmem") / f"postgres-{digest}"

    @staticmethod
    def _postgres_can_reach(folder: Path) -> bool:
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder)],  # noqa: S603, S607
                               check=False, capture_output=True)
        return probe.returncode == 0

    @staticmethod
    def _pg_bin(name: str) -> str:
        found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
        if not found:
            raise StackError("PostgreSQL server binaries not found: install Debian's 'postgresql' package")
        return found

    def _as_owner(self, argv: list[str]) -> list[str]:
        # The server refuses to run as root: run it as the `postgres` system account then.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _pg_up(self, password: str) -> str:
        port = self.settings.postgres_port
        data, sock = self.pg_dir / "data", self.pg_dir / "sock"
        url = f"postgresql://convmem:{password}@127.0.0.1:{port}/convmem"
        if not (data / "PG_VERSION").exists():
            self.pg_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            sock.mkdir(exist_ok=True)
            pwfile = self.pg_dir / "pwfile"
            pwfile.write_text(password + "\n")
            if os.geteuid() == 0:
                shutil.chown(self.pg_dir, "postgres", "postgres")
                shutil.chown(sock, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            pwfile.chmod(0o600)
            subprocess.run(self._as_owner([  # noqa: S603
                self._pg_bin("initdb"), "-D", str(data), "-U", "convmem", "--pwfile", str(pwfile),
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]),
                check=True, stdout=subprocess.DEVNULL)
            pwfile.unlink()
        if not _port_open(port):
            opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on"
            subprocess.run(self._as_owner([  # noqa: S603
                self._pg_bin("pg_ctl"), "-D", str(data), "-l", str(self.pg_dir / "server.log"),
                "-o", opts, "-w", "-t", str(int(self.settings.start_timeout_s)), "start"]),
                check=True, stdout=subprocess.DEVNULL)
        env = {**os.environ, "PGPASSWORD": password}
        exists = subprocess.run(  # noqa: S603
            [self._pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "convmem", "-d", "postgres",
             "-tAc", "SELECT 1 FROM pg_database WHERE datname='convmem'"],
            check=True, capture_output=True, text=True, env=env).stdout.strip()
        if exists != "1":
            subprocess.run(  # noqa: S603
                [self._pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "convmem", "-d", "postgres",
                 "-c", "CREATE DATABASE convmem"], check=True, stdout=subprocess.DEVNULL, env=env)
        return url

    def _pg_down(self) -> None:
        data = self.pg_dir / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(self._as_owner([self._pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),  # noqa: S603
                           check=False, stdout=subprocess.DEVNULL)

    # ---------------------------------------------------------------- public
    def up(self) -> dict[str, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = _read_env(stack_env_file())
        # Secrets for the local stack are generated here, kept only in the gitignored file.
        pg_password = env.get("CONVMEM_STACK_PG_PASSWORD") or secrets.token_urlsafe(18)
        values = {
            "CONVMEM_STACK_PG_PASSWORD": pg_password,
            "CONVMEM_JWT_SECRET": env.get("CONVMEM_JWT_SECRET") or secrets.token_urlsafe(32),
            "CONVMEM_WHATSAPP_APP_SECRET": env.get("CONVMEM_WHATSAPP_APP_SECRET") or secrets.token_hex(16),
            "CONVMEM_WHATSAPP_VERIFY_TOKEN": env.get("CONVMEM_WHATSAPP_VERIFY_TOKEN") or secrets.token_urlsafe(12),
        }
        # Write the secrets before starting anything, so a failed start does not lose them.
        self._write_env({**env, **values})
        values["CONVMEM_KAFKA_BOOTSTRAP"] = self.external.kafka_bootstrap or self._kafka_up()
        if self.external.database_url is not None:
            values["CONVMEM_DATABASE_URL"] = self.external.database_url.get_secret_value()
        else:
            values["CONVMEM_DATABASE_URL"] = self._pg_up(pg_password)
        self._write_env({**env, **values})
        return values

    def down(self) -> None:
        self._kafka_down()
        self._pg_down()

    def status(self) -> dict[str, str]:
        env = _read_env(stack_env_file())
        env["CONVMEM_STACK_KAFKA_RUNNING"] = "yes" if _port_open(self.settings.kafka_port) else "no"
        env["CONVMEM_STACK_POSTGRES_RUNNING"] = "yes" if _port_open(self.settings.postgres_port) else "no"
        return env

    @staticmethod
    def _write_env(values: dict[str, str]) -> None:
        path = stack_env_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# written by `convmem stack up`; local development only"]
        lines += [f"{k}={shlex.quote(v)}" for k, v in sorted(values.items())]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)


def format_env(values: dict[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(values.items()))


def postgres_program(name: str) -> str:
    """A PostgreSQL program (pg_dump, pg_restore, createdb, ...) of the installation the
    stack runs its server from, so a dump is read by the same version that wrote it."""
    return Stack._pg_bin(name)
