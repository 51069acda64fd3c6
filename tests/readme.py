"""The README's shell commands, read from its ```sh blocks, so tests run exactly what a
reader would type (tests/test_readme.py checks that every one of them is run somewhere)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


@dataclass(frozen=True)
class Command:
    section: str  # the "## " heading the block sits under
    line: str  # the command, continuation lines joined, trailing comment removed


def _strip_comment(line: str) -> str:
    # A comment starts at a "#" after a space; no README command has one inside.
    return re.split(r"\s+#(?:\s|$)", line, maxsplit=1)[0].rstrip()


def commands(text: str | None = None) -> list[Command]:
    text = README.read_text() if text is None else text
    found: list[Command] = []
    section, block, pending = "", False, ""
    for raw in text.splitlines():
        if not block and raw.startswith("## "):
            section = raw[3:].strip()
        elif raw.strip() == "```sh":
            block = True
        elif block and raw.strip() == "```":
            block = False
        elif block:
            line = pending + _strip_comment(raw).strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            if line and not line.startswith("#"):
                found.append(Command(section, line))
    return found


def section(name: str) -> list[str]:
    lines = [c.line for c in commands() if c.section == name]
    if not lines:
        raise AssertionError(f"README.md has no sh commands under '## {name}'")
    return lines


@dataclass(frozen=True)
class Ran:
    command: str
    stdout: str
    stderr: str


def run_section(name: str, env: Mapping[str, str], cwd: Path, *,
                fill: Mapping[str, str] | None = None,
                append: Mapping[str, str] | None = None, one_shell: bool = False,
                only: str | None = None, timeout: float = 600) -> list[Ran]:
    """Runs every command of a README section in bash, in order, and fails on the first
    non-zero exit. `fill` replaces placeholders (e.g. NAMESPACE) with real values; `append`
    adds arguments to commands starting with a prefix (smaller sizes for a benchmark);
    `one_shell` runs the section as one script, as a reader typing into one terminal would
    (an `eval` or alias carries over to the next line). `only` runs just the commands
    that start with it (one test per command, so that test workers can share them)."""
    commands = []
    for line in section(name):
        if only is not None and not line.startswith(only):
            continue
        command = line
        for placeholder, value in (fill or {}).items():
            command = command.replace(placeholder, value)
        for prefix, extra in (append or {}).items():
            if command.startswith(prefix):
                command = f"{command} {extra}"
        commands.append(command)
    if one_shell:
        commands = ["set -euo pipefail\n" + "\n".join(commands)]
    ran = []
    for command in commands:
        done = subprocess.run(["bash", "-c", "shopt -s expand_aliases\n" + command],
                              cwd=cwd, env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=timeout, check=False)
        assert done.returncode == 0, (f"README command failed ({done.returncode}): {command}\n"
                                      f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
        ran.append(Ran(command, done.stdout, done.stderr))
    return ran
