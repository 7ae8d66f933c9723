"""Data source secrets at rest: sealed with the first key, opened with any, rotated by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from exchangis.connectors.registry import default_registry
from exchangis.errors import SettingsError, TerminalConnectorError
from exchangis.migrations import upgrade
from exchangis.vault import PREFIX, Vault, key_file_keys

PG = default_registry().type("POSTGRESQL")
PARAMS = {"host": "h", "username": "u", "password": "pw-1", "params": {"sslpassword": "pw-2"}}


def test_seal_hides_every_secret_and_open_gives_it_back() -> None:
    vault = Vault([Fernet.generate_key().decode()])
    sealed = vault.seal(PG, PARAMS)
    assert sealed["host"] == "h" and sealed["username"] == "u"
    assert sealed["password"].startswith(PREFIX) and "pw-1" not in sealed["password"]
    assert sealed["params"]["sslpassword"].startswith(PREFIX)
    assert vault.seal(PG, sealed) == sealed  # sealing twice changes nothing
    assert vault.open(PG, sealed) == PARAMS
    assert vault.open(PG, PARAMS) == PARAMS  # stored before encryption: read as it is


def test_a_new_first_key_still_opens_old_secrets_and_rotation_drops_the_old_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = Vault([old]).seal(PG, PARAMS)
    both = Vault([new, old])
    assert both.open(PG, sealed) == PARAMS
    rotated = both.rotate(PG, sealed)
    assert Vault([new]).open(PG, rotated) == PARAMS
    with pytest.raises(TerminalConnectorError, match="cannot be decrypted"):
        Vault([new]).open(PG, sealed)


def test_bad_keys_are_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="Fernet key"):
        Vault(["not-a-key"])
    key = key_file_keys(str(tmp_path))
    assert key == key_file_keys(str(tmp_path))  # generated once, then read
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"


def test_the_rotate_command_encrypts_every_stored_secret_with_the_first_key(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = Vault([old]).seal(PG, PARAMS)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO exg_datasource (name, type, description, connect_params,"
                " create_user, create_time, update_time) VALUES ('pg', 'POSTGRESQL', '',"
                " :params, 'u', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"params": json.dumps(sealed)},
        )
    env = {
        **os.environ,
        "EXCHANGIS_DATABASE_URL": url,
        "EXCHANGIS_SECRET_KEYS": f"{new},{old}",
        "EXCHANGIS_REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "exchangis.cli", "secrets", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:
        stored = json.loads(
            conn.execute(text("SELECT connect_params FROM exg_datasource")).scalar_one()
        )
    assert Vault([new]).open(PG, stored) == PARAMS
    assert "pw-1" not in str(stored)


def test_processes_starting_together_agree_on_one_generated_key(tmp_path: Path) -> None:
    code = (
        "import sys; from exchangis.vault import key_file_keys;"
        " print(key_file_keys(sys.argv[1])[0])"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    keys = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert keys == {(tmp_path / "secret.key").read_text().strip()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]
