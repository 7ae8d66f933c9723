"""``exchangis`` command line: db upgrade, api, worker, reap, secrets, users, ``up`` (the embedded
default), and the user commands that talk to a server (:mod:`exchangis.usercli`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from exchangis import process_log
from exchangis.errors import SettingsError
from exchangis.settings import ADMIN_PASSWORD_FILE, EMBEDDED_REDIS_DIR, load_settings
from exchangis.usercli.parser import register as register_user_commands

logger = logging.getLogger("exchangis")

WORKER_MEMORY_ENV = {
    # glibc gives every thread of the bulk drivers a malloc arena that keeps its freed memory:
    # two arenas keep a worker's resident size near what a transfer really holds.
    "MALLOC_ARENA_MAX": "2",
    # Arrow's allocator (mimalloc) hands freed pages back at once and commits its arenas as
    # they fill: a CSV -> PostgreSQL transfer of the mixed table peaks 45 MiB lower and ends
    # 40 MiB lower, at the same speed (docs/performance.md).
    "MIMALLOC_PURGE_DELAY": "0",
    "MIMALLOC_ARENA_EAGER_COMMIT": "0",
}
"""The environment a worker process starts with, unless the operator's sets them otherwise."""


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    """Create or upgrade the metadata schema."""
    from exchangis.migrations import upgrade

    upgrade(load_settings().database_url)
    print("metadata schema is at head")
    return 0


def cmd_api(_: argparse.Namespace) -> int:
    """Serve the API with a threaded server (production: gunicorn 'exchangis.app:create_app()')."""
    from exchangis.app import create_app

    settings = load_settings()
    create_app(settings).run(
        host=settings.host, port=settings.port, threaded=True, use_reloader=False
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one Celery worker and the worker's services beside it, and start either again
    whenever it dies on its own.

    Both are child processes: a worker that crashes (an OOM kill, a broker library failing on
    reconnection) is replaced after a second, so queued tasks never wait for an operator. The
    services (reaper, scheduler, connector calls: :mod:`workers.services`) run in a process of
    their own, because the Celery main process forks pool processes and a fork must not copy
    a lock that one of their threads holds. SIGTERM/SIGINT stop both for good.
    """
    if args.child:
        from workers.celery_app import create_celery, worker_argv

        settings = load_settings()
        create_celery(settings).worker_main(worker_argv(settings, args.extra))
        return 0
    if args.services:
        from workers.services import run_services

        run_services(load_settings())
        return 0
    stopping = False
    me = [sys.executable, "-m", "exchangis.cli", "worker"]
    commands = {"worker": [*me, "--child", *args.extra], "services": [*me, "--services"]}
    children: dict[str, subprocess.Popen[bytes]] = {}

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # No libpq or MySQL client defaults (a password or file a data source would use).
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL_"))}
    env = {**WORKER_MEMORY_ENV, **inherited}
    relayed = load_settings().log_format == "json"

    def start(name: str) -> subprocess.Popen[bytes]:
        return _start(commands[name], env, name if relayed else None)

    for name in commands:
        children[name] = start(name)
    while not stopping:
        time.sleep(0.5)
        for name, child in list(children.items()):
            code = child.poll()
            if code is not None and not stopping:
                logger.error("worker %s exited with code %s: starting a new one", name, code)
                time.sleep(1)
                children[name] = start(name)
    for child in children.values():
        child.wait()
    return 0


def _start(command: list[str], env: dict[str, str], relayed: str | None) -> subprocess.Popen[bytes]:
    """Start a child; ``relayed``: its output goes through :func:`_relay` under that name."""
    if relayed is None:
        return subprocess.Popen(command, env=env)
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    threading.Thread(target=_relay, args=(child, relayed), daemon=True).start()
    return child


def _relay(child: subprocess.Popen[bytes], name: str) -> None:
    """Pass a child's output on as JSON lines: its own log lines as they are, anything else
    it prints (a library's message at shutdown) as a line of the logger ``exchangis.<name>``."""
    assert child.stdout is not None
    said = logging.getLogger(f"exchangis.{name}")
    for raw in child.stdout:
        line = raw.decode(errors="replace").rstrip()
        if line.startswith("{") and line.endswith("}"):
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        elif line:
            said.info(line)


def cmd_secrets_rotate(_: argparse.Namespace) -> int:
    """Encrypt every stored data source secret again with the first of ``secret_keys``."""
    from sqlalchemy import select

    from exchangis.models import DataSource
    from exchangis.runtime import Runtime

    rt = Runtime(load_settings())
    with rt.sessions.begin() as session:
        rows = list(session.scalars(select(DataSource)))
        for ds in rows:
            ds.connect_params = rt.vault.rotate(rt.registry.type(ds.type), ds.connect_params)
    print(f"{len(rows)} data source(s) encrypted with the first key")
    return 0


def cmd_secrets_new_key(_: argparse.Namespace) -> int:
    """Print a new key for ``secret_keys``."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """Return the password to set and whether it was generated (then it is printed once)."""
    import getpass
    import secrets

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise SystemExit("the passwords differ")
        return first, False
    return secrets.token_urlsafe(15), True


def cmd_users_create(args: argparse.Namespace) -> int:
    """Create a user (``--admin``: an admin, e.g. the first one of an installation)."""
    from exchangis.runtime import Runtime
    from exchangis.services import user

    password, generated = _new_password(args)
    user.create_user(Runtime(load_settings()), args.name, password, admin=args.admin)
    kind = "admin" if args.admin else "user"
    print(f"{kind} {args.name} created" + (f"; password: {password}" if generated else ""))
    return 0


def cmd_users_passwd(args: argparse.Namespace) -> int:
    """Set a user's password (every token of theirs stops working)."""
    from exchangis.runtime import Runtime
    from exchangis.services import user
    from exchangis.services.access import Caller

    password, generated = _new_password(args)
    admin = Caller("exchangis-cli", admin=True)
    user.update_user(Runtime(load_settings()), admin, args.name, {"password": password})
    print(f"password of {args.name} set" + (f": {password}" if generated else ""))
    return 0


def cmd_users_list(_: argparse.Namespace) -> int:
    """Print every user: name, admin, disabled."""
    from exchangis.runtime import Runtime
    from exchangis.services import user
    from exchangis.services.access import Caller

    for item in user.list_users(Runtime(load_settings()), Caller("exchangis-cli", admin=True)):
        flags = [f for f in ("admin", "disabled") if item[f]]
        print(item["user_name"], *flags)
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    """Print a new bearer token of a user (for scripts; it lasts ``token_ttl_seconds``)."""
    from exchangis.runtime import Runtime
    from exchangis.services import user

    print(user.issue_token(Runtime(load_settings()), args.name)["token"])
    return 0


def cmd_reap(_: argparse.Namespace) -> int:
    """Run one reaper pass and print the tasks it moved."""
    from exchangis.engine.reaper import reap
    from exchangis.runtime import Runtime

    moved = reap(Runtime(load_settings()))
    print(f"reaped {len(moved)} task(s): {moved}")
    return 0


def _wait_for_http(url: str, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def _embedded_admin(data_dir: Path) -> str:
    """Return a bearer token of an admin for the demo; on a first run (no users at all)
    create ``admin`` with a generated password kept in ``<data_dir>/admin.password``."""
    import secrets

    from sqlalchemy import select

    from exchangis.models import User
    from exchangis.runtime import Runtime
    from exchangis.services import user

    rt = Runtime(load_settings())
    with rt.sessions() as session:
        admin = session.scalar(select(User.name).where(User.admin.is_(True)).order_by(User.id))
    if admin is None:
        password = secrets.token_urlsafe(15)
        user.create_user(rt, "admin", password, admin=True)
        admin = "admin"
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = data_dir / ADMIN_PASSWORD_FILE
        descriptor = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        print(f"created the admin user 'admin'; its password is in {secret}")
    token = str(user.issue_token(rt, admin)["token"])
    rt.close()
    return token


def cmd_up(args: argparse.Namespace) -> int:
    """Start the embedded default: Redis (unless configured), a worker, the API, a demo job."""
    from exchangis.embedded import EmbeddedRedis
    from exchangis.migrations import upgrade

    settings = load_settings()
    data_dir = Path(settings.data_dir)
    env = dict(os.environ)
    redis = None
    if not settings.redis_url:
        redis = EmbeddedRedis(data_dir / EMBEDDED_REDIS_DIR)
        redis.start()
        env["EXCHANGIS_REDIS_URL"] = redis.url
        print(f"embedded redis: {redis.url} (files in {redis.data_dir})")
    children: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        upgrade(settings.database_url)
        token = _embedded_admin(data_dir)
        me = [sys.executable, "-m", "exchangis.cli"]
        children.append(subprocess.Popen([*me, "worker"], env=env))
        children.append(subprocess.Popen([*me, "api"], env=env))
        base = f"http://{settings.host}:{settings.port}/api/rest_j/v1/exchangis"
        _wait_for_http(f"{base}/openapi.json", 30)
        print(f"API: {base}  (OpenAPI: {base}/openapi.json)")
        return _demo_and_serve(args, base, data_dir, token, children)
    except KeyboardInterrupt:
        print("stopping")
        return 0
    finally:
        _stop_children(children)
        if redis:
            redis.stop()


def _demo_and_serve(
    args: argparse.Namespace,
    base: str,
    data_dir: Path,
    token: str,
    children: list[subprocess.Popen[bytes]],
) -> int:
    """Run the demo job when asked, then serve until a child exits (or Ctrl-C)."""
    if args.demo:
        from exchangis.demo import run_demo

        if not run_demo(base, data_dir / "files" / "demo", token):
            print("demo job did not succeed; see the logs above")
            if args.exit_after_demo:
                return 1
    if args.exit_after_demo:
        return 0
    print("serving; press Ctrl-C to stop")
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    print("a child process exited; stopping")
    return 1


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """Ask every child to stop, then kill those still running after 15 s."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command."""
    try:
        log_format = load_settings().log_format
    except SettingsError:  # the command says what is wrong with the settings
        log_format = "text"
    process_log.configure(log_format)
    parser = argparse.ArgumentParser(prog="exchangis")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="metadata schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(
        func=cmd_db_upgrade
    )
    sub.add_parser("api", help="serve the HTTP API").set_defaults(func=cmd_api)
    worker = sub.add_parser("worker", help="run a Celery worker (restarted if it dies)")
    worker.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--services", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("extra", nargs="*", help="extra celery worker options")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("reap", help="one reaper pass").set_defaults(func=cmd_reap)
    secrets = sub.add_parser("secrets", help="data source secrets at rest")
    secrets_sub = secrets.add_subparsers(dest="what", required=True)
    secrets_sub.add_parser(
        "rotate", help="encrypt every stored secret with the first of secret_keys"
    ).set_defaults(func=cmd_secrets_rotate)
    secrets_sub.add_parser("new-key", help="print a new key for secret_keys").set_defaults(
        func=cmd_secrets_new_key
    )
    users = sub.add_parser("users", help="users of the API")
    users_sub = users.add_subparsers(dest="what", required=True)
    create = users_sub.add_parser("create", help="create a user (--admin: an admin)")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="the user is an admin")
    passwd = users_sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    for command, func in ((create, cmd_users_create), (passwd, cmd_users_passwd)):
        command.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (else: asked for on a terminal, "
            "generated and printed otherwise)",
        )
        command.set_defaults(func=func)
    users_sub.add_parser("list", help="list users").set_defaults(func=cmd_users_list)
    token = users_sub.add_parser("token", help="print a new bearer token of a user")
    token.add_argument("name")
    token.set_defaults(func=cmd_users_token)
    up = sub.add_parser("up", help="embedded default: redis, worker, API (and a demo)")
    up.add_argument("--demo", action="store_true", help="submit a demo job that moves rows")
    up.add_argument("--exit-after-demo", action="store_true", help="stop after the demo")
    up.set_defaults(func=cmd_up)
    register_user_commands(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
