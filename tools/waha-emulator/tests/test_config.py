from pathlib import Path

import pytest

from waha_emulator.__main__ import config_from_args
from waha_emulator.config import EmulatorConfig


def test_env_then_flags(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WAHA_API_KEY", "from-env")
    monkeypatch.setenv("WAHA_EMULATOR_STATE_FILE", str(tmp_path / "a.json"))
    monkeypatch.setenv("WAHA_EMULATOR_QR_COUNT", "4")
    monkeypatch.setenv("WAHA_EMULATOR_WAIT_TIMEOUT", "7")
    config = config_from_args(["--port", "3999", "--qr-first-lifetime", "1.5", "--qr-wait-timeout", "3"])
    assert config.api_key == "from-env"
    assert config.port == 3999
    assert config.state_file == Path(tmp_path / "a.json")
    assert (config.qr_count, config.qr_first_lifetime, config.qr_next_lifetime) == (4, 1.5, 20.0)
    assert (config.send_wait_timeout, config.qr_wait_timeout) == (7.0, 3.0)
    assert config.restart_sessions is True


def test_defaults_match_waha() -> None:
    config = EmulatorConfig.from_env({})
    assert config.api_key is None
    assert (config.qr_first_lifetime, config.qr_next_lifetime, config.qr_count) == (60.0, 20.0, 6)
    assert config.port == 3000 and config.engine == "NOWEB"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError):
        EmulatorConfig.from_env({"WAHA_EMULATOR_QR_COUNT": "many"})
    with pytest.raises(ValueError):
        EmulatorConfig(qr_count=0)
    assert EmulatorConfig.from_env({"WAHA_WORKER_RESTART_SESSIONS": "false"}).restart_sessions is False


def test_media_store_and_history_settings(monkeypatch) -> None:
    monkeypatch.setenv("WHATSAPP_FILES_LIFETIME", "0")
    monkeypatch.setenv("WAHA_EMULATOR_STORE_DEFAULT", "off")
    monkeypatch.setenv("WAHA_EMULATOR_SEED_HISTORY", "7")
    config = config_from_args(["--seed-history-messages", "3", "--base-url", "https://waha.example/"])
    assert (config.files_lifetime, config.store_default, config.seed_history, config.seed_history_messages) == (
        0.0, False, 7, 3)
    assert config.files_base_url == "https://waha.example/api/files/"
    assert config_from_args(["--store-default", "on", "--files-lifetime", "5"]).store_default is True
    defaults = EmulatorConfig.from_env({})
    assert (defaults.files_lifetime, defaults.store_default, defaults.seed_history) == (180.0, True, 0)
    assert defaults.files_base_url == "http://127.0.0.1:3000/api/files/"
    with pytest.raises(ValueError):
        EmulatorConfig(seed_history=1000, seed_history_messages=1000)
