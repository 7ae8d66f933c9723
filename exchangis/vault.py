"""Data source secrets encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256, ``cryptography``).

A secret value is stored as ``enc:v1:<Fernet token>``. ``secret_keys`` (comma-separated Fernet
keys) lists the keys: the first encrypts, every one decrypts (``MultiFernet``), so a key is
rotated by putting a new one first, running ``exchangis secrets rotate`` (every stored secret
is encrypted again with the first key) and then dropping the old one. Without ``secret_keys``
a key is generated once into ``<data_dir>/secret.key`` (mode 0600): fine for one machine,
while API and workers on several hosts must be given the same ``secret_keys``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from exchangis.connectors.base import DataSourceType
from exchangis.errors import SettingsError, TerminalConnectorError
from exchangis.settings import KEY_FILE

logger = logging.getLogger(__name__)

PREFIX = "enc:v1:"


def key_file_keys(data_dir: str) -> list[str]:
    """Return the key of ``<data_dir>/secret.key``, creating the file on first use."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        # Written whole under another name, then linked into place: processes starting
        # together agree on the first key linked, and none reads a half-written file.
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".secret.key.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(Fernet.generate_key().decode())
        try:
            os.link(draft, path)
            logger.warning("no secret_keys set: generated a data source key in %s", path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return [path.read_text().strip()]


class Vault:
    """Seals and opens the secret values of data source connect params."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SettingsError("secret_keys: at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except (ValueError, TypeError):
            raise SettingsError(
                "secret_keys: every key must be a Fernet key (32 url-safe base64 bytes; make one"
                " with `exchangis secrets new-key`)"
            ) from None

    def seal_value(self, value: str) -> str:
        """Return ``value`` encrypted (a sealed value is returned as it is)."""
        if value.startswith(PREFIX):
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open_value(self, value: str) -> str:
        """Return the clear text of a sealed ``value`` (a value stored before encryption as is).

        Raises:
            TerminalConnectorError: no configured key opens it.
        """
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise TerminalConnectorError(
                "a data source secret cannot be decrypted with the configured secret_keys"
            ) from None

    def rotate_value(self, value: str) -> str:
        """Return ``value`` encrypted with the first key (sealing a clear one)."""
        if not value.startswith(PREFIX):
            return self.seal_value(value)
        token = self._fernet.rotate(value[len(PREFIX) :].encode())
        return PREFIX + token.decode()

    def seal(self, ds_type: DataSourceType, connect: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``connect`` with every secret value sealed."""
        return ds_type.map_secrets(connect, self.seal_value)

    def open(self, ds_type: DataSourceType, connect: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``connect`` with every secret value in clear (for the code that connects)."""
        return ds_type.map_secrets(connect, self.open_value)

    def rotate(self, ds_type: DataSourceType, connect: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``connect`` with every secret value encrypted with the first key."""
        return ds_type.map_secrets(connect, self.rotate_value)
