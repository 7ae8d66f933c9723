"""Where the user commands find their server: flags, then the environment, then a config file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "/api/rest_j/v1/exchangis"
"""The API's primary prefix; a URL given without it gets it appended."""
URL_ENV = "EXCHANGIS_URL"
TOKEN_ENV = "EXCHANGIS_TOKEN"
CONFIG_ENV = "EXCHANGIS_CLI_CONFIG"
CONFIG_KEYS = ("url", "token")


class UsageError(Exception):
    """The command line (or what it reads) asks for something that cannot be done: exit 2."""


@dataclass(frozen=True)
class Connection:
    """The server to call and the bearer token to sign with."""

    base: str
    """The API's base URL, prefix included (what :class:`~exchangis.client.ApiClient` takes)."""
    token: str


def api_base(url: str) -> str:
    """Return the API base for ``url``: the server's URL, with or without the prefix."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"the server URL {url!r} must start with http:// or https://")
    return url if url.endswith(PREFIX) else url + PREFIX


def config_file(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """Return the config file's path and whether it was named (then it must exist)."""
    named = environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser(), True
    home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(home).expanduser() / "exchangis" / "cli.toml", False


def read_config(path: Path, named: bool) -> dict[str, str]:
    """Return ``url`` and ``token`` from the config file (nothing when an unnamed one is absent).

    Raises:
        UsageError: the file is named but missing, is not TOML, or holds other keys or values.
    """
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        if named:
            raise UsageError(f"{CONFIG_ENV} names {path}, which does not exist") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the config file {path}: {exc}") from None
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)} (known: url, token)")
    for key, value in values.items():
        if not isinstance(value, str):
            raise UsageError(f"{path}: {key} must be a string")
    return dict(values)


def resolve(
    url: str | None, token: str | None, environ: Mapping[str, str] | None = None
) -> Connection:
    """Return the connection: each of URL and token from its flag, else the environment,
    else the config file.

    Raises:
        UsageError: naming what to set when the URL or the token is missing.
    """
    env = os.environ if environ is None else environ
    path, named = config_file(env)
    url = url or env.get(URL_ENV)
    token = token or env.get(TOKEN_ENV)
    if not url or not token or named:
        from_file = read_config(path, named)
        url = url or from_file.get("url")
        token = token or from_file.get("token")
    where = f'or put {{key}} = "..." in {path}'
    if not url:
        raise UsageError(f"no server URL: pass --url, set {URL_ENV}, " + where.format(key="url"))
    if not token:
        raise UsageError(
            f"no token: pass --token, set {TOKEN_ENV}, "
            + where.format(key="token")
            + " (a token: POST /api/rest_j/v1/user/login, or `exchangis users token NAME`"
            " on the server)"
        )
    return Connection(api_base(url), token)
