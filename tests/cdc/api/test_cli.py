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


@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_an_empty_token_is_no_token(
    token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``CDC_API_TOKEN=${UNSET_VAR}`` must not turn authentication off, on any address."""
    monkeypatch.setenv("CDC_STATE_DSN", "host=127.0.0.1 dbname=x")
    monkeypatch.setenv("CDC_SECRET_KEY", SecretBox.generate_key())
    monkeypatch.setenv("CDC_API_TOKEN", token)
    for host in ("127.0.0.1", "0.0.0.0"):
        assert main(["serve", "--host", host]) == 2
        assert "no API token" in capsys.readouterr().err
    assert main(["serve", "--token", token]) == 2
    assert "no API token" in capsys.readouterr().err


def test_refuses_a_short_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDC_STATE_DSN", "host=127.0.0.1 dbname=x")
    monkeypatch.setenv("CDC_SECRET_KEY", SecretBox.generate_key())
    monkeypatch.setenv("CDC_API_TOKEN", "secret123456789")  # 15 characters
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "at least 16 characters" in err and "secrets.token_urlsafe(32)" in err
    assert "secret123456789" not in err


def test_an_empty_token_cannot_open_the_app() -> None:
    """The app itself (not only the CLI) treats an empty token as none: refused, never served open."""
    from airflow_connectors.cdc.api.app import UnsafeConfiguration, create_app
    from airflow_connectors.cdc.settings import ServiceSettings

    settings = ServiceSettings(state_dsn="host=127.0.0.1", api_token="", secret_key=SecretBox.generate_key())
    assert settings.api_token is None
    with pytest.raises(UnsafeConfiguration):
        create_app(settings)


def test_refuses_a_malformed_secret_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CDC_STATE_DSN", "host=127.0.0.1 dbname=x")
    monkeypatch.setenv("CDC_API_TOKEN", "a-token-long-enough-to-be-accepted")
    monkeypatch.setenv("CDC_SECRET_KEY", "not-a-fernet-key")
    assert main(["serve"]) == 2
    assert "generate-key" in capsys.readouterr().err


def test_generate_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-key"]) == 0
    SecretBox(capsys.readouterr().out.strip())  # a usable key
