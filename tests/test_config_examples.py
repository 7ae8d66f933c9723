"""The example settings files in config/ load and validate (so the docs stay true)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchangis.settings import load_settings

CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.mark.parametrize("name", ["embedded.toml", "production.toml"])
def test_example_config_loads(name: str) -> None:
    settings = load_settings(environ={"EXCHANGIS_CONFIG": str(CONFIG / name)})
    assert settings.port == 8080
