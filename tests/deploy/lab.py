"""The production recipe of docs/deploy.md, started on this machine with hosts of their own.

Each worker host is a network namespace joined to this one by a veth pair, with an address
and a host name of its own (``unshare --uts``). What the hosts share is reached at one service
address on a dummy interface here (``svc``), over each host's veth — never the host's
loopback: a Redis server the lab starts, bound to it, and forwarders (tests/deploy/forward.py)
to the machine's PostgreSQL (the metadata database, and data) and MariaDB (data). The API is
gunicorn with the units' options, bound to the service address. Every process reads the one
settings file the recipe shows, with the address and ports of this lab.

Losing a host: its veth goes down (its connections hang, as when a cable or a switch port
fails), then every process in its namespace is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from exchangis.client import ApiClient, ApiError
from exchangis.embedded import free_port, redis_binary
from tests import metadata
from tests.services import mysql_params, postgres_params

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "docs" / "deploy.md"
PREFIX = "exgd"
"""Names of every namespace and link a lab makes (a crashed run's are removed by the next)."""
API_PATH = "/api/rest_j/v1/exchangis"
EXCHANGIS = (sys.executable, "-m", "exchangis.cli")


class NamespacesForbiddenError(RuntimeError):
    """This machine does not let the test make network namespaces."""


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{shlex.join(command)}: {done.stderr.strip()}")


def recipe_blocks(kind: str) -> list[str]:
    """Return the fenced blocks of docs/deploy.md whose info string is ``kind``."""
    text = RECIPE.read_text()
    return re.findall(rf"^```{re.escape(kind)}\n(.*?)^```", text, re.M | re.S)


def unit_command(unit: str) -> list[str]:
    """Return the ``ExecStart`` of the systemd unit docs/deploy.md names ``unit``, as argv
    with the recipe's install prefix replaced by this Python's (this checkout's venv)."""
    for block in recipe_blocks("ini"):
        if f"# {unit}\n" in block:
            line = next(x for x in block.splitlines() if x.startswith("ExecStart="))
            argv = shlex.split(line.removeprefix("ExecStart="))
            bindir = str(Path(sys.executable).parent)
            return [a.replace("/opt/exchangis/venv/bin", bindir) for a in argv]
    raise KeyError(f"docs/deploy.md has no unit {unit}")


def _quiet(*argv: str) -> str:
    """Run a command that may fail (cleaning up); return its output."""
    return subprocess.run(argv, check=False, capture_output=True, text=True).stdout


def ns_pids(netns: str) -> list[int]:
    """Return the pids of every process in a network namespace."""
    return [int(p) for p in _quiet("ip", "netns", "pids", netns).split()]


def clear_stale() -> None:
    """Remove namespaces and links a crashed lab left behind."""
    listing = _quiet("ip", "netns", "list")
    for name in re.findall(rf"^({PREFIX}\w+)", listing, re.M):
        for pid in ns_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _quiet("ip", "netns", "del", name)
    links = _quiet("ip", "-o", "link")
    for name in re.findall(rf"^\d+: ({PREFIX}\w+)[@:]", links, re.M):
        _quiet("ip", "link", "del", name)


@dataclass
class Host:
    """A worker host: a namespace, its veth, its address, its queue and its processes."""

    name: str
    netns: str
    link: str
    """The veth end on this side (down: the host is cut off)."""
    address: str
    queue: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    lost: bool = False


@dataclass
class Lab:
    """A deployment of ``hosts`` worker hosts (see the module docstring); a context manager."""

    workdir: Path
    hosts_wanted: int = 3
    settings: dict[str, Any] = field(default_factory=dict)
    """Settings beyond the recipe's (fast timers for a test)."""
    hosts: list[Host] = field(default_factory=list)
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:4])
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _database: str = ""
    _dummy: str = ""

    def __post_init__(self) -> None:
        self.net = random.randint(100, 250)
        self.svc = f"10.{self.net}.0.1"
        self.ports = {name: free_port() for name in ("api", "redis", "postgres", "mysql")}
        self.workdir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        clear_stale()
        try:
            self._network()
            self._stores()
            self._configure()
            self._api()
            for host in self.hosts:
                self.start_worker(host)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything the lab started and remove its namespaces, links and database."""
        for host in self.hosts:
            self._kill(host)
            _quiet("ip", "netns", "del", host.netns)
            _quiet("ip", "link", "del", host.link)  # gone with its peer, unless still held
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self._dummy:
            _quiet("ip", "link", "del", self._dummy)
        if self._database:
            metadata.drop_database(self._database)

    # -- network --------------------------------------------------------------------------------
    def _network(self) -> None:
        # the service address lives on a veth pair of its own here (a dummy link would do, but
        # not every kernel has the module); a host whose veth is down cannot reach it
        self._dummy = f"{PREFIX}{self.run}s"
        try:
            _ip("link", "add", self._dummy, "type", "veth", "peer", "name", f"{self._dummy}t")
        except RuntimeError as exc:
            self._dummy = ""
            raise NamespacesForbiddenError(str(exc)) from None
        _ip("addr", "add", f"{self.svc}/32", "dev", self._dummy)
        _ip("link", "set", self._dummy, "up")
        _ip("link", "set", f"{self._dummy}t", "up")
        for k in range(1, self.hosts_wanted + 1):
            netns, link, peer = (f"{PREFIX}{self.run}{x}{k}" for x in "hvp")
            try:
                subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
            except subprocess.CalledProcessError as exc:
                raise NamespacesForbiddenError(exc.stderr.decode().strip()) from None
            host = Host(
                f"h{k}",
                netns,
                link,
                f"10.{self.net}.{k}.2",
                f"host-{k}",
                self.workdir / f"h{k}.log",
            )
            self.hosts.append(host)
            _ip("link", "add", link, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", netns)
            _ip("addr", "add", f"10.{self.net}.{k}.1/24", "dev", link)
            _ip("link", "set", link, "up")
            _ip("addr", "add", f"{host.address}/24", "dev", peer, netns=netns)
            _ip("link", "set", peer, "up", netns=netns)
            _ip("link", "set", "lo", "up", netns=netns)
            _ip("route", "add", "default", "via", f"10.{self.net}.{k}.1", netns=netns)

    # -- shared services ------------------------------------------------------------------------
    def _start(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Any:
        out = log.open("ab")
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env or self.env(), stdout=out, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def _stores(self) -> None:
        pg, my = postgres_params(), mysql_params()
        forward = self._start(
            [
                sys.executable,
                "-m",
                "tests.deploy.forward",
                f"{self.svc}:{self.ports['postgres']}={pg['host']}:{pg['port']}",
                f"{self.svc}:{self.ports['mysql']}={my['host']}:{my['port']}",
            ],
            self.workdir / "forward.log",
            env=dict(os.environ),
        )
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self._start(
            [
                str(redis_binary()),
                "--bind",
                self.svc,
                "--port",
                str(self.ports["redis"]),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(redis_dir),
            ],
            self.workdir / "redis.log",
            env=dict(os.environ),
        )
        self._database = f"exgdeploy_{self.run}_{uuid.uuid4().hex[:4]}"
        metadata.metadata_database(self._database)
        self._wait(lambda: "ready" in (self.workdir / "forward.log").read_text(), "forwarders")
        assert forward.poll() is None

    @property
    def database_url(self) -> str:
        """Return the metadata database's URL, through the service address."""
        user = postgres_params()["username"]
        return f"postgresql+psycopg://{user}@{self.svc}:{self.ports['postgres']}/{self._database}"

    def data_source(self, kind: str) -> dict[str, Any]:
        """Return connect params of the machine's MariaDB or PostgreSQL through the service
        address (what a worker host reaches)."""
        if kind == "MYSQL":
            return {**mysql_params(), "host": self.svc, "port": self.ports["mysql"]}
        return {**postgres_params(), "host": self.svc, "port": self.ports["postgres"]}

    def _configure(self) -> None:
        """Write the recipe's settings file with this lab's addresses and the test's extras."""
        template = recipe_blocks("toml")[0]
        ours = {
            "database_url": self.database_url,
            "redis_url": f"redis://{self.svc}:{self.ports['redis']}/0",
            "secret_keys": Fernet.generate_key().decode(),
            "data_dir": str(self.workdir / "var"),
            "queues": [h.queue for h in self.hosts],
        }
        text = template
        for name, value in ours.items():
            text, found = re.subn(
                rf"^{name} = .*$", f"{name} = {json.dumps(value)}", text, flags=re.M
            )
            assert found == 1, f"docs/deploy.md's settings have no {name}"
        text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in self.settings.items())
        self.config = self.workdir / "exchangis.toml"
        self.config.write_text(text)
        subprocess.run(
            [*EXCHANGIS, "db", "upgrade"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
        )
        password = uuid.uuid4().hex
        subprocess.run(
            [*EXCHANGIS, "users", "create", "ops", "--admin", "--password-stdin"],
            cwd=ROOT,
            env=self.env(),
            input=password.encode(),
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [*EXCHANGIS, "users", "token", "ops"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        self.base = f"http://{self.svc}:{self.ports['api']}{API_PATH}"
        self.client = ApiClient(self.base, token)

    def env(self, **more: str) -> dict[str, str]:
        """Return the environment of a process of the deployment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
        return {**env, "EXCHANGIS_CONFIG": str(self.config), **more}

    def _api(self) -> None:
        argv = unit_command("exchangis-api.service")
        argv = [a.replace("${EXCHANGIS_BIND}", f"{self.svc}:{self.ports['api']}") for a in argv]
        self.api = self._start(argv, self.workdir / "api.log")
        self._wait(self._api_answers, "the API (gunicorn)")

    def _api_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/openapi.json", timeout=2):
                return True
        except OSError:
            return False

    # -- worker hosts ---------------------------------------------------------------------------
    def start_worker(self, host: Host) -> None:
        """Start ``exchangis worker`` (the unit's command) on a host, under its host name and
        with its own queue besides the default one; wait until Celery is ready."""
        argv = shlex.join(unit_command("exchangis-worker.service"))
        script = f"hostname {host.name} && exec {argv}"
        host.process = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--uts", "sh", "-c", script],
            cwd=ROOT,
            env=self.env(EXCHANGIS_QUEUES=host.queue),
            stdout=host.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self._wait(lambda: " ready." in host.log.read_text(errors="replace"), f"{host.name}")

    def lose(self, host: Host) -> None:
        """Cut a host off (its veth down), then SIGKILL every process on it."""
        _ip("link", "set", host.link, "down")
        time.sleep(0.5)
        self._kill(host)
        host.lost = True

    @staticmethod
    def _kill(host: Host) -> None:
        """SIGKILL every process on a host."""
        for pid in ns_pids(host.netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if host.process is not None:
            host.process.wait(10)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _wait(ready: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ApiError):
                if ready():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{what} not ready in {timeout:g}s")

    def logs(self) -> Iterator[tuple[str, str]]:
        """Yield (name, last lines) of every log of the lab (for a failure's report)."""
        for log in sorted(self.workdir.glob("*.log")):
            yield log.name, log.read_text(errors="replace")[-3000:]
