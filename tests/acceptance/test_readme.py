"""The README's shell examples run: every ```sh block, in order, in one scratch folder, with the installed `sojourn`.

How the README's ```sh blocks are read (write new examples to these rules):
- The blocks run in the order they appear, in one bash session in one scratch folder, so a block sees what the
  blocks before it made (the README reads as one session that starts with the quick start). The folder holds only a
  copy of the checkout's `sojourn.toml`, as a clone does where the README's commands are run. The database is the
  default `./sojourn.db` there; no SOJOURN_* variable is set, and the installed `sojourn` comes first on PATH.
- A command is one line, with the lines it continues with a trailing backslash; lines that are blank or only a
  comment are not commands. Every command must exit 0.
- A command documented as refused ends with a comment that says so, `# refused: exit N` (more words may follow):
  it must exit N. Example: `sojourn advance 1   # refused: exit 1, one "Error:" line per unmet guard`.
- Commands that install software or never end are not run, and only these (SKIPPED_COMMANDS): `python3 -m venv ...`
  and `pip install ...` (the test runs the installed package), `sojourn daemon` without `--once` or a subcommand, and
  `sojourn serve` without `--check`. Each skipped command is listed by a test of its own, so a new one is seen.
- Other fences (```toml, ```ini, ```yaml, ```console, or none) are not shell examples and are not run.

A failure names the README line of the command, its block and section, the exit code, and what it printed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from acceptance.conftest import installed_sojourn

README = Path(__file__).resolve().parents[2] / "README.md"
REFUSED = re.compile(r"#\s*refused: exit (\d+)")
TIMEOUT_SECONDS = 900  # the whole session; a hanging command is named by the last one that finished


def _installs(words: list[str]) -> bool:
    return words[:3] == ["python3", "-m", "venv"] or (Path(words[0]).name.startswith("pip") and "install" in words)


def _never_ends(words: list[str]) -> bool:
    daemon = words[:2] == ["sojourn", "daemon"] and "--once" not in words and "status" not in words
    return daemon or (words[:2] == ["sojourn", "serve"] and "--check" not in words)


SKIPPED_COMMANDS = {"installs software": _installs, "runs until stopped": _never_ends}  # why -> does it apply


@dataclass(frozen=True)
class Command:
    text: str  # as written, continuation lines included
    line: int  # README line of its first line
    block_line: int  # README line of the block's opening fence
    section: str
    expected: int

    def where(self) -> str:
        return f"README.md line {self.line} (```sh block at line {self.block_line}, section {self.section!r})"


def sh_commands(text: str) -> list[Command]:
    """Every command of every ```sh block, in order."""
    commands: list[Command] = []
    section, block_line, pending, start, other_fence = "(top)", 0, "", 0, False
    for number, line in enumerate(text.splitlines(), start=1):
        if not block_line:
            if line.startswith("```"):  # a fence of another kind opens or closes (```toml, ```ini, ```)
                other_fence = not other_fence and line.strip() != "```sh"
            if line.startswith("#") and not other_fence:
                section = line.lstrip("#").strip()
            if line.strip() == "```sh" and not other_fence:
                block_line = number
            continue
        if line.strip() == "```":
            assert not pending, f"README.md line {start}: a command continues past the end of its block"
            block_line = 0
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending, start = (pending + "\n" + line, start) if pending else (line, number)
        if not line.endswith("\\"):
            found = REFUSED.search(line)
            commands.append(Command(pending, start, block_line, section, int(found.group(1)) if found else 0))
            pending = ""
    assert not block_line, f"README.md line {block_line}: a ```sh block is never closed"
    return commands


def words_of(command: Command) -> list[str]:
    return shlex.split(command.text.replace("\\\n", " "), comments=True)


def skip_reason(command: Command) -> str | None:
    words = words_of(command)
    return next((why for why, applies in SKIPPED_COMMANDS.items() if words and applies(words)), None)


def session_script(commands: list[Command], results: Path) -> str:
    """One bash script that runs the commands in order and writes each one's exit code and output to `results`."""
    parts = ["cd \"$SCRATCH\""]
    for index, command in enumerate(commands):
        if skip_reason(command) is not None:
            continue
        parts += ["{", command.text, f"}} >'{results}/{index}.out' 2>'{results}/{index}.err' </dev/null",
                  f"echo $? >'{results}/{index}.rc'"]
    return "\n".join(parts) + "\n"


def _environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOJOURN_")}
    env["PATH"] = f"{installed_sojourn().parent}{os.pathsep}{env.get('PATH', '')}"
    env["SCRATCH"] = str(scratch)
    return env


def _report(command: Command, code: int | None, results: Path, index: int) -> str:
    out = (results / f"{index}.out").read_text(encoding="utf-8", errors="replace")
    err = (results / f"{index}.err").read_text(encoding="utf-8", errors="replace")
    return (f"{command.where()}: exited {code}, expected {command.expected}\n  $ {command.text}\n"
            f"  stdout: {out[-1500:]!r}\n  stderr: {err[-1500:]!r}")


def test_readme_shell_examples_run_and_exit_as_documented(tmp_path: Path) -> None:
    """Every command of every ```sh block exits 0, or the code its `# refused: exit N` comment documents."""
    commands = sh_commands(README.read_text(encoding="utf-8"))
    scratch, results = tmp_path / "scratch", tmp_path / "results"
    scratch.mkdir()
    shutil.copy(README.with_name("sojourn.toml"), scratch / "sojourn.toml")
    results.mkdir()
    script = tmp_path / "session.sh"
    script.write_text(session_script(commands, results), encoding="utf-8")
    try:
        subprocess.run(["bash", str(script)], cwd=scratch, env=_environment(scratch), capture_output=True,
                       timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        finished = [i for i in range(len(commands)) if (results / f"{i}.rc").exists()]
        hung = next(c for i, c in enumerate(commands) if i not in finished and skip_reason(c) is None)
        pytest.fail(f"{hung.where()} did not finish within {TIMEOUT_SECONDS} s:\n  $ {hung.text}", pytrace=False)
    failures = []
    for index, command in enumerate(commands):
        if skip_reason(command) is not None:
            continue
        code = int((results / f"{index}.rc").read_text(encoding="utf-8"))
        if code != command.expected:
            failures.append(_report(command, code, results, index))
        elif "Traceback" in (results / f"{index}.err").read_text(encoding="utf-8", errors="replace"):
            failures.append(f"{command.where()}: printed a traceback\n" + _report(command, code, results, index))
    assert not failures, "\n\n".join(failures)


def test_readme_skips_only_installs_and_commands_that_never_end() -> None:
    """The commands not run are exactly those the skip rules name, each listed here, and every ```sh block that
    has commands runs at least one of them unless all of them install software."""
    commands = sh_commands(README.read_text(encoding="utf-8"))
    skipped = [(c.line, skip_reason(c), c.text.splitlines()[0]) for c in commands if skip_reason(c) is not None]
    assert all(why in SKIPPED_COMMANDS for _, why, _ in skipped)
    blocks: dict[int, list[Command]] = {}
    for c in commands:
        blocks.setdefault(c.block_line, []).append(c)
    for block_line, block in blocks.items():
        reasons = {skip_reason(c) for c in block}
        assert None in reasons or reasons == {"installs software"}, \
            f"README.md line {block_line}: no command of this ```sh block runs ({sorted(map(str, reasons))})"


def test_readme_reader_finds_commands_refusals_and_skips() -> None:
    """The reader joins continued lines, takes `# refused: exit N` from a command's last line, skips comments."""
    text = "# Demo\n```sh\n# a comment\nsojourn init\nsojourn assignment create --home BR \\\n  --host DE   " \
           "# refused: exit 2, bad\nsojourn daemon --interval 5\nsojourn daemon --once\n```\n```ini\n# not a " \
           "heading\n```\n```sh\nsojourn daemon status\n```\n"
    commands = sh_commands(text)
    assert [(c.line, c.expected, c.section) for c in commands] == [(4, 0, "Demo"), (5, 2, "Demo"), (7, 0, "Demo"),
                                                                     (8, 0, "Demo"), (14, 0, "Demo")]
    assert [skip_reason(c) for c in commands] == [None, None, "runs until stopped", None, None]
