"""The config file at the command line: a typo or a missing file stops every command with exit 2, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.conftest import Sojourn


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sojourn.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(("body", "problem"), [
    ('[databse]\nurl = "sqlite:///elsewhere.db"\n', "[databse]: unknown section; did you mean [database]?"),
    ('[database]\nulr = "sqlite:///elsewhere.db"\n', "[database] ulr: unknown key; did you mean `url`?"),
    ("[daemon]\ninterval_second = 5\n", "[daemon] interval_second: unknown key; did you mean `interval_seconds`?"),
], ids=["section", "database-url", "daemon-interval"])
def test_a_typo_in_the_config_file_stops_any_command_with_exit_2_and_a_suggestion(sojourn: Sojourn, tmp_path: Path,
                                                                                  body: str, problem: str) -> None:
    """A misspelt section or key is never ignored: even `person list` refuses, naming it and the closest name."""
    config = _config(tmp_path, body)
    outcome = sojourn("--config", str(config), "person", "list")
    assert (outcome.code, outcome.stdout) == (2, "")
    assert outcome.stderr == f"Error: config file {config}: {problem}\n"
    assert not Path("sojourn.db").exists()


def test_every_problem_of_the_config_file_is_an_error_line(sojourn: Sojourn, tmp_path: Path) -> None:
    """Three mistakes in three sections give three `Error:` lines from one run."""
    config = _config(tmp_path, '[database]\nulr = "x"\n[daemon]\ninterval_seconds = -5\n[serve]\nport = "80"\n')
    outcome = sojourn("--config", str(config), "daemon", "status")
    assert outcome.code == 2
    assert outcome.stderr.splitlines() == [
        f"Error: config file {config}: [database] ulr: unknown key; did you mean `url`?",
        f"Error: config file {config}: [daemon] interval_seconds: must be greater than 0, not -5",
        f"Error: config file {config}: [serve] port: must be a whole number, not '80'",
    ]


def test_sojourn_config_naming_a_missing_file_exits_2(sojourn: Sojourn, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """SOJOURN_CONFIG pointing nowhere is an error, not a silent fall-back to ./sojourn.toml or the defaults."""
    Path("sojourn.toml").write_text("[notifiers.console]\n", encoding="utf-8")
    missing = tmp_path / "gone.toml"
    monkeypatch.setenv("SOJOURN_CONFIG", str(missing))
    outcome = sojourn("daemon", "--once")
    assert outcome.code == 2
    assert outcome.stderr.splitlines()[0] == f"Error: config file {missing} does not exist"


def test_a_short_link_secret_stops_the_daemon_with_exit_2(sojourn: Sojourn, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The signing secret [serve] secret_env names must be at least 32 bytes; the daemon refuses a shorter one."""
    config = _config(tmp_path, '[notifiers.console]\n[serve]\npublic_url = "https://s.example.com"\n'
                               'secret_env = "SOJOURN_TEST_LINK_SECRET"\n')
    monkeypatch.setenv("SOJOURN_TEST_LINK_SECRET", "too short")
    outcome = sojourn("--config", str(config), "daemon", "--once")
    assert outcome.code == 2
    assert outcome.stderr.startswith("Error: [serve] secret_env: the secret in SOJOURN_TEST_LINK_SECRET is 9 bytes; "
                                     "a signing secret must be at least 32 bytes\n")
    assert "too short" not in outcome.stderr
