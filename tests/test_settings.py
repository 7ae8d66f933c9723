"""Settings load defaults → file → environment, and fail with one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchangis.errors import SettingsError
from exchangis.settings import load_settings


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings(environ={})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url == ""
    assert settings.port == 8080
    assert settings.trusted_proxies == ()  # X-Exchangis-User is never believed by default


def test_file_then_environment_override_in_order(tmp_path: Path) -> None:
    config = tmp_path / "exchangis.toml"
    config.write_text('port = 9000\nlogin_rate_limit = "3/minute"\nqueues = ["a", "b"]\n')
    settings = load_settings(environ={"EXCHANGIS_CONFIG": str(config), "EXCHANGIS_PORT": "9100"})
    assert settings.port == 9100
    assert settings.login_rate_limit == "3/minute"
    assert settings.queues == ("a", "b")


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"EXCHANGIS_PORT": "eighty", "EXCHANGIS_BATCH_SIZE": "x"})
    assert "PORT='eighty'" in caught.value.message
    assert "BATCH_SIZE='x'" in caught.value.message


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(environ={"EXCHANGIS_CONFIG": str(config)})


def test_out_of_range_port_is_rejected() -> None:
    with pytest.raises(SettingsError, match="port=70000"):
        load_settings(environ={"EXCHANGIS_PORT": "70000"})


def test_missing_config_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(environ={"EXCHANGIS_CONFIG": str(tmp_path / "nope.toml")})


def test_broker_defaults_to_redis_with_another_db() -> None:
    settings = load_settings({"redis_url": "redis://h:6379/0"}, environ={})
    assert settings.broker() == "redis://h:6379/1"


def test_bad_security_settings_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            environ={
                "EXCHANGIS_LOGIN_RATE_LIMIT": "often",
                "EXCHANGIS_TRUSTED_PROXIES": "10.0.0.0/8,gateway",
                "EXCHANGIS_TOKEN_TTL_SECONDS": "5",
            }
        )
    assert "login_rate_limit='often'" in caught.value.message
    assert "'gateway' is not an address" in caught.value.message
    assert "token_ttl_seconds: must be at least 60" in caught.value.message
