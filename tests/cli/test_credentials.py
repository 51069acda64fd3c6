"""S3 settings from the lineage's storage Secret."""

from __future__ import annotations

import pytest

from warmstart.cli.credentials import s3_settings
from warmstart.cli.errors import CredentialsError

SECRET_VALUE = "do-not-print-me"


def test_settings_come_from_the_secret_keys_only() -> None:
    settings = s3_settings(
        {
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": SECRET_VALUE,
            "AWS_ENDPOINT_URL": "http://s3.example:8333",
            "AWS_REGION": "eu-west-1",
            "AWS_SESSION_TOKEN": "ignored: not part of the Secret contract",
        },
        secret="ns/s3",
    )

    assert (settings.access_key_id, settings.secret_access_key) == ("id", SECRET_VALUE)
    assert (settings.endpoint_url, settings.region) == ("http://s3.example:8333", "eu-west-1")
    assert settings.session_token is None
    assert SECRET_VALUE not in repr(settings)


def test_endpoint_override_wins_and_region_defaults() -> None:
    settings = s3_settings(
        {
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "key",
            "AWS_ENDPOINT_URL": "http://in-cluster",
        },
        secret="ns/s3",
        endpoint_override="http://127.0.0.1:9000",
    )

    assert settings.endpoint_url == "http://127.0.0.1:9000"
    assert settings.region == "us-east-1"


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        ({"AWS_ACCESS_KEY_ID": "id"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": SECRET_VALUE, "AWS_ACCESS_KEY_ID": ""}, "AWS_ACCESS_KEY_ID"),
        ({}, "AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_a_missing_key_is_named_and_no_value_is_shown(data: dict[str, str], missing: str) -> None:
    with pytest.raises(CredentialsError) as raised:
        s3_settings(data, secret="team-a/s3")

    assert str(raised.value).startswith(f"Secret team-a/s3 has no {missing} ")
    assert SECRET_VALUE not in str(raised.value)
