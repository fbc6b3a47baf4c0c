"""`[serve]`: where the server listens, the links' base URL and the secret read from the environment."""

from __future__ import annotations

import pytest

from engine.config import ServeSettings
from engine.errors import BadInput
from engine.links import required_signer_from, signer_from

SECRET = "a deployment's link secret, 32+ bytes"


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


@pytest.mark.parametrize(("section", "problem"), [
    ({"prot": 1}, "unknown key(s) prot"),
    ({"public_url": "sojourn.example.com"}, "must be an http:// or https:// URL"),
    ({"port": 70000}, "port: 70000 must be a whole number from 1 to 65535"),
    ({"link_days": 0}, "link_days: 0 must be"),
    ({"secret_env": 5}, "secret_env: must be the name"),
    ({"connection_limit": 0}, "connection_limit: 0 must be a whole number"),
    ({"channel_timeout": "30"}, "channel_timeout: '30' must be a whole number"),
    ({"threads": 0}, "threads: 0 must be a whole number"),
])
def test_a_bad_serve_table_is_refused_naming_the_key(section: dict[str, object], problem: str) -> None:
    """Every mistake in [serve] is BadInput that says which key and why."""
    with pytest.raises(BadInput, match="config \\[serve\\]") as caught:
        ServeSettings.from_config(section, {})
    assert problem in caught.value.message


def test_the_web_front_limits_default_to_values_that_outlast_slow_clients() -> None:
    """connection_limit 500, channel_timeout 30 s and 8 threads unless [serve] says otherwise."""
    default = ServeSettings.from_config({}, {})
    assert (default.connection_limit, default.channel_timeout, default.threads) == (500, 30, 8)
    given = ServeSettings.from_config({"connection_limit": 900, "channel_timeout": 10, "threads": 4}, {})
    assert (given.connection_limit, given.channel_timeout, given.threads) == (900, 10, 4)


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
