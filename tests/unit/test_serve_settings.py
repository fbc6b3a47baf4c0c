"""`[serve]`: where the server listens, what it takes on, the base URL of links, and the secret from the environment."""

from __future__ import annotations

import pytest

from engine.delivery.config import ServeSettings
from engine.delivery.links import required_signer_from, signer_from
from engine.domain.errors import BadInput

SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret"  # 34 bytes


def test_the_secret_comes_from_the_variable_secret_env_names() -> None:
    """The config names the variable; its value is the secret, and links are minted only with both it and a URL."""
    section = {"public_url": "https://s.example.com/", "secret_env": "LINK_SECRET", "port": 9000}
    settings = ServeSettings.from_config(section, {"LINK_SECRET": SECRET})
    assert (settings.public_url, settings.secret, settings.port, settings.links_enabled) == (
        "https://s.example.com", SECRET, 9000, True)
    signer = signer_from(settings)
    assert signer is not None
    assert signer.secret == SECRET
    assert signer_from(ServeSettings.from_config(section, {})) is None
    assert signer_from(ServeSettings.from_config({}, {})) is None


def test_server_limits_default_and_are_read_from_the_table() -> None:
    """connection_limit, channel_timeout and threads default to 500, 30 s and 8, and the table overrides each."""
    defaults = ServeSettings.from_config({}, {})
    assert (defaults.connection_limit, defaults.channel_timeout, defaults.threads) == (500, 30, 8)
    tuned = ServeSettings.from_config({"connection_limit": 50, "channel_timeout": 5, "threads": 2}, {})
    assert (tuned.connection_limit, tuned.channel_timeout, tuned.threads) == (50, 5, 2)


def test_a_signing_secret_shorter_than_32_bytes_is_refused() -> None:
    """A 31-byte secret is bad input naming the variable and never the secret; 32 bytes are enough."""
    section = {"public_url": "https://s.example.com", "secret_env": "LINK_SECRET"}
    with pytest.raises(BadInput) as caught:
        ServeSettings.from_config(section, {"LINK_SECRET": "x" * 31})
    assert caught.value.message == ("[serve] secret_env: the secret in LINK_SECRET is 31 bytes; a signing secret "
                                    "must be at least 32 bytes")
    assert "x" * 31 not in " ".join(caught.value.lines())
    assert ServeSettings.from_config(section, {"LINK_SECRET": "é" * 16}).links_enabled  # bytes, not characters


@pytest.mark.parametrize(("section", "problem"), [
    ({"prot": 1}, "[serve] prot: unknown key; did you mean `port`?"),
    ({"public_url": "sojourn.example.com"}, "[serve] public_url: must be an http:// or https:// URL"),
    ({"port": 70000}, "[serve] port: must be less than or equal to 65535, not 70000"),
    ({"link_days": 0}, "[serve] link_days: must be greater than or equal to 1, not 0"),
    ({"secret_env": 5}, "[serve] secret_env: must be a string, not 5"),
    ({"threads": "8"}, "[serve] threads: must be a whole number, not '8'"),
    ({"connection_limit": 0}, "[serve] connection_limit: must be greater than or equal to 1, not 0"),
    ({"channel_timeout": 2.5}, "[serve] channel_timeout: must be a whole number, not 2.5"),
])
def test_a_bad_serve_table_is_refused_naming_the_key(section: dict[str, object], problem: str) -> None:
    """Every mistake in [serve] is BadInput that says which key and why."""
    with pytest.raises(BadInput) as caught:
        ServeSettings.from_config(section, {})
    assert caught.value.lines() == [problem]


@pytest.mark.parametrize("secret", ["s3cret", "x" * 31, "é" * 15])
def test_a_link_secret_shorter_than_32_bytes_is_refused(secret: str) -> None:
    """A short secret (bytes, not characters) is BadInput naming the variable, never showing the secret."""
    with pytest.raises(BadInput, match="at least 32") as caught:
        ServeSettings.from_config({"secret_env": "LINK_SECRET"}, {"LINK_SECRET": secret})
    assert "LINK_SECRET" in caught.value.message
    assert secret not in " ".join(caught.value.lines())
    assert ServeSettings.from_config({"secret_env": "LINK_SECRET"}, {"LINK_SECRET": "x" * 32}).secret == "x" * 32


@pytest.mark.parametrize("environ", [{}, {"LINK_SECRET": ""}])
def test_a_public_url_without_its_secret_is_refused_for_the_daemon(environ: dict[str, str]) -> None:
    """public_url with secret_env naming a missing or empty variable: the daemon's signer is BadInput."""
    settings = ServeSettings.from_config({"public_url": "https://s.example.com", "secret_env": "LINK_SECRET"},
                                         environ)
    with pytest.raises(BadInput, match="LINK_SECRET named by secret_env is not set or empty"):
        required_signer_from(settings)
    with pytest.raises(BadInput, match="secret_env is not set"):
        required_signer_from(ServeSettings.from_config({"public_url": "https://s.example.com"}, {}))
    assert required_signer_from(ServeSettings.from_config({}, {})) is None
