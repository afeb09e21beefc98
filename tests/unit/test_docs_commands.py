"""Every `llmops` command in docs/operations.md's and the README's operator-path shell blocks is a real command
whose options and arguments the CLI accepts (the operator path itself runs in
tests/integration/test_operator_path.py; these need a GPU, vLLM or a server, so they are parsed, not run)."""

import re
import shlex
from pathlib import Path

import pytest
import typer
import typer.core

from llmops.cli import app

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_PATH = "## The operator's path (your own documents)"


def _bash_lines(text: str) -> list[str]:
    """The command lines of the text's ```bash blocks: continuations joined, comments and blank lines left out."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


def _llmops_args(line: str) -> list[str] | None:
    """The arguments after `llmops` (environment assignments and `sudo -u USER` skipped); None: not llmops."""
    words = shlex.split(line.rstrip("&"))
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    if words[:2] == ["sudo", "-u"]:
        words = words[3:]
    return words[1:] if words and words[0] == "llmops" else None


def _documented() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(OPERATOR_PATH):]
    section = section[:section.index("\n## ", 1)]
    lines = _bash_lines(section) + _bash_lines((ROOT / "docs/operations.md").read_text(encoding="utf-8"))
    return [args for args in map(_llmops_args, lines) if args is not None]


def _parse(args: list[str]) -> None:
    """Resolve the subcommands and parse the rest as the CLI would (a usage error raises TyperException)."""
    command = typer.main.get_command(app)
    name = "llmops"
    while isinstance(command, typer.core.TyperGroup):
        found, sub, args = command.resolve_command(typer.Context(command, info_name=name), args)
        assert found is not None and sub is not None
        name, command = found, sub
    command.make_context(name, args)


def test_the_documents_list_llmops_commands() -> None:
    firsts = {" ".join(args[:2]) for args in _documented()}
    assert {"data eval-set", "models promote", "loop tick", "train offline"} <= firsts, firsts


@pytest.mark.parametrize("args", _documented(), ids=" ".join)
def test_a_documented_command_parses(args: list[str]) -> None:
    _parse(args)


def test_a_wrong_option_is_caught() -> None:
    for wrong in (["data", "eval-set", "--no-such-option"], ["loop", "no-such-command"], ["models", "promote"]):
        with pytest.raises(typer.TyperException, match=r"No such|Missing"):
            _parse(wrong)
