"""The dashboard app's safety rules (browser tests of the pages live in tests/browser)."""

from __future__ import annotations

import pytest

from dashboard.__main__ import main
from dashboard.app import ExposedWithoutCredentials, create_app, is_loopback
from epi_ml.settings import Settings


def test_binds_to_localhost_without_credentials() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert create_app(Settings(), host="127.0.0.1") is not None


def test_refuses_to_be_exposed_without_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExposedWithoutCredentials, match="EPI_ML_DASH_USER"):
        create_app(Settings(), host="0.0.0.0")
    assert main(["--host", "0.0.0.0"]) == 2
    assert "refusing to serve" in capsys.readouterr().err


def test_exposed_with_credentials_requires_them_on_every_request() -> None:
    app = create_app(Settings(dash_user="eng", dash_password="s3cret"), host="0.0.0.0")
    client = app.server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Basic ZW5nOnMzY3JldA=="}).status_code == 200
