"""Every ``python -m vsynth ...`` command the docs show is one vsynth accepts.

The commands are taken from the fenced code blocks of README.md and docs/**/*.md (continuation lines
joined, shell comments dropped; ``torchrun ... -m vsynth`` counts too). The entry point's are composed
in-process exactly as Hydra composes them for a run (every value of a sweep at least once, launcher
and ``hydra.*`` keys included) and then range-checked as a job's start checks them; nothing runs and
no file they name is read. The other commands' arguments go through their own parsers
(``python -m vsynth.eval|data|report|train.slim``: argparse, stopped right after parsing;
``python -m vsynth.export``: its key=value parser). A synopsis line (``[--opt X]``, ``a|b``) is
checked against the command's ``--help`` instead: every option it names must exist.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
NOT_COMMANDS = ("python", "py", "yaml", "yml", "json")  # fenced code in these languages holds no shell commands

#: commands shown in the docs that this test cannot check, with the reason (none today)
EXEMPT: dict[str, str] = {}


@dataclass(frozen=True)
class Command:
    where: str       # file:line
    line: str        # the command as shown (continuations joined)
    module: str      # vsynth, vsynth.eval, ...
    args: tuple[str, ...]

    @property
    def synopsis(self) -> bool:
        """A usage line with optional parts or alternatives, not a runnable example."""
        return any(a.startswith("[") or ("|" in a and "=" not in a) for a in self.args)


def fenced_blocks(path: Path):
    """(first line number, lines) of every fenced block whose language may hold shell commands."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\w*)", lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2).lower()
        body, start = [], i + 2
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        if lang not in NOT_COMMANDS:
            yield start, body


def commands() -> list[Command]:
    out = []
    for path in DOCS:
        for start, body in fenced_blocks(path):
            joined: list[tuple[int, str]] = []
            for n, text in enumerate(body, start):
                if joined and joined[-1][1].endswith("\\"):
                    joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + text.strip())
                else:
                    joined.append((n, text))
            for n, text in joined:
                if "-m vsynth" not in text:
                    continue
                tokens = shlex.split(text.replace("$PWD", str(REPO)), comments=True)
                at = next((i for i, t in enumerate(tokens[:-1]) if t == "-m" and re.fullmatch(r"vsynth(\.[\w.]+)?",
                                                                                                tokens[i + 1])), None)
                if at is None:  # only in a comment
                    continue
                out.append(Command(f"{path.relative_to(REPO)}:{n}", " ".join(text.split()), tokens[at + 1],
                                   tuple(tokens[at + 2:])))
    return out


COMMANDS = commands()


def test_the_docs_show_commands_of_every_kind() -> None:
    kinds = {c.module for c in COMMANDS}
    assert {"vsynth", "vsynth.eval", "vsynth.data", "vsynth.report", "vsynth.export", "vsynth.train.slim"} <= kinds, kinds
    assert sum(c.module == "vsynth" for c in COMMANDS) >= 40, len(COMMANDS)
    assert set(EXEMPT) <= {c.line for c in COMMANDS}, "an exempt command is no longer in the docs"


# ---- python -m vsynth: compose ------------------------------------------------------------------------

def _job_overrides(args: tuple[str, ...]) -> list[list[str]]:
    """The override lists of the jobs a command runs: every value of each sweep at least once."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    flags = {"-m", "--multirun"}
    rest, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--cfg":
            skip = True
        elif a not in flags:
            rest.append(a)
    parsed = OverridesParser.create().parse_overrides(rest)
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
               else [o.input_line] for o in parsed]
    jobs = max((len(c) for c in choices), default=1)
    return [[c[i % len(c)] for c in choices] for i in range(jobs)]


@pytest.fixture(scope="module")
def compose_job():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from vsynth.config.checks import check
    from vsynth.paths import conf_dir
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()

    def _compose(overrides: list[str]):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            del cfg["hydra"]
        check(cfg)
        return cfg

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        yield _compose
    GlobalHydra.instance().clear()


MAIN = [c for c in COMMANDS if c.module == "vsynth" and c.line not in EXEMPT]


@pytest.mark.parametrize("command", MAIN, ids=[c.where for c in MAIN])
def test_entry_point_command_composes(command: Command, compose_job, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing is written, and if it were, it would land here
    if "--help" in command.args:
        from vsynth.__main__ import _help

        assert "Config groups" in _help()
        return
    for overrides in _job_overrides(command.args):
        try:
            compose_job(overrides)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{command.where}: {command.line}\n  overrides {overrides}\n  {type(e).__name__}: {e}")
    assert not any(tmp_path.iterdir()), "composing a docs command wrote files"


# ---- the other command lines: their own parsers ---------------------------------------------------------

class _Parsed(Exception):
    pass


def _main(module: str):
    import importlib

    return importlib.import_module(f"{module}.__main__" if module != "vsynth.train.slim" else module).main


def _help_text(module: str, prefix: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:  # argparse prints the help and exits
        _main(module)([*prefix, "--help"])
    assert stop.value.code in (0, None)
    return capsys.readouterr().out


OTHER = [c for c in COMMANDS if c.module != "vsynth" and c.line not in EXEMPT]


@pytest.mark.parametrize("command", OTHER, ids=[c.where for c in OTHER])
def test_command_arguments_parse(command: Command, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = list(command.args)
    if command.module == "vsynth.export":
        from vsynth.export.__main__ import main, parse

        if args == ["--help"]:
            assert main(args) == 0
            assert "ckpt" in capsys.readouterr().out
        else:
            parse(args)  # raises ConfigError naming the key on a bad argument
        return
    if command.synopsis or "--help" in args:
        prefix = args[: next((i for i, a in enumerate(args) if a.startswith(("-", "["))), len(args))]
        text = _help_text(command.module, prefix, capsys)
        used = {a.strip("[]").split("=")[0] for a in args if a.strip("[").startswith("--")} - {"--help"}
        missing = sorted(o for o in used if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text))
        assert not missing, f"{command.where}: {command.line}\n  options not in --help: {missing}"
        return
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        raise _Parsed(parse_args(self, argv, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        _main(command.module)(args)
    except _Parsed:
        return
    except SystemExit:
        pytest.fail(f"{command.where}: {command.line}\n  {capsys.readouterr().err[-1500:]}")
    pytest.fail(f"{command.where}: {command.line}: the command returned without parsing its arguments")
