"""``airflow-connectors-cdc``: refuses unsafe or incomplete configuration before serving anything."""

from __future__ import annotations

import pytest

from airflow_connectors.cdc.cli import main
from airflow_connectors.cdc.connectors.secrets import SecretBox


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CDC_STATE_DSN", "CDC_API_TOKEN", "CDC_SECRET_KEY", "CDC_ALLOW_UNAUTHENTICATED", "CDC_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_refuses_to_start_without_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert "CDC_STATE_DSN" in capsys.readouterr().err


def test_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDC_STATE_DSN", "host=127.0.0.1 dbname=x")
    monkeypatch.setenv("CDC_SECRET_KEY", SecretBox.generate_key())
    assert main(["serve"]) == 2
    assert "CDC_API_TOKEN" in capsys.readouterr().err
    assert main(["serve", "--insecure-loopback", "--host", "0.0.0.0"]) == 2
    assert "non-loopback" in capsys.readouterr().err


def test_refuses_a_malformed_secret_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDC_STATE_DSN", "host=127.0.0.1 dbname=x")
    monkeypatch.setenv("CDC_API_TOKEN", "t")
    monkeypatch.setenv("CDC_SECRET_KEY", "not-a-fernet-key")
    assert main(["serve"]) == 2
    assert "generate-key" in capsys.readouterr().err


def test_generate_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-key"]) == 0
    SecretBox(capsys.readouterr().out.strip())  # a usable key
