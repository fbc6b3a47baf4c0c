"""`[serve]`: where the server listens, the links' base URL and the secret read from the environment."""

from __future__ import annotations

import pytest

from engine.config import ServeSettings
from engine.errors import BadInput
from engine.links import signer_from


def test_the_secret_comes_from_the_variable_secret_env_names() -> None:
    """The config names the variable; its value is the secret, and links are minted only with both it and a URL."""
    section = {"public_url": "https://s.example.com/", "secret_env": "LINK_SECRET", "port": 9000}
    settings = ServeSettings.from_config(section, {"LINK_SECRET": "s3cret"})
    assert (settings.public_url, settings.secret, settings.port, settings.links_enabled) == (
        "https://s.example.com", "s3cret", 9000, True)
    signer = signer_from(settings)
    assert signer is not None
    assert signer.secret == "s3cret"
    assert signer_from(ServeSettings.from_config(section, {})) is None
    assert signer_from(ServeSettings.from_config({}, {})) is None


@pytest.mark.parametrize(("section", "problem"), [
    ({"prot": 1}, "unknown key(s) prot"),
    ({"public_url": "sojourn.example.com"}, "must be an http:// or https:// URL"),
    ({"port": 70000}, "port: 70000 must be a whole number from 1 to 65535"),
    ({"link_days": 0}, "link_days: 0 must be"),
    ({"secret_env": 5}, "secret_env: must be the name"),
])
def test_a_bad_serve_table_is_refused_naming_the_key(section: dict[str, object], problem: str) -> None:
    """Every mistake in [serve] is BadInput that says which key and why."""
    with pytest.raises(BadInput, match="config \\[serve\\]") as caught:
        ServeSettings.from_config(section, {})
    assert problem in caught.value.message
