"""The layers of docs/architecture.md: every import of one llmops module by another follows the table."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "llmops"
CORE = "core"
FACE = ("ui", "commands", "cli")
BELOW_FACE = (CORE, "data", "models", "inference", "train", "serve", "loop")
ALLOWED: dict[str, set[str]] = {
    CORE: {CORE},
    "data": {CORE},
    "models": {CORE},
    "inference": {"models", CORE},
    "train": {"data", "models", CORE},
    "serve": {"inference", "data", "models", CORE},
    "loop": {"train", "inference", "data", "models", CORE},
    "demo": {*BELOW_FACE},
    **{face: {*BELOW_FACE, "demo", *FACE} for face in FACE},
}


def layer_of(module: str) -> str:
    """`llmops.serve.gateway` → serve; `llmops.settings` → core; `llmops.cli` and `llmops.__main__` → cli."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("cli", "__main__"):
        return "cli"
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return CORE


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def llmops_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `llmops` import in the file, at any depth (lazy imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "llmops" else [f"llmops.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names if name.split(".")[0] == "llmops"]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "llmops"]
    return found


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = layer_of(module_name(path))
        for line, target in llmops_imports(path):
            if layer_of(target) not in ALLOWED[source] | {source}:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {source} imports {target} "
                                f"({layer_of(target)})")
    return problems


def test_every_module_has_a_layer() -> None:
    layers = {layer_of(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert layers <= set(ALLOWED), layers - set(ALLOWED)


def test_imports_only_run_down_the_layers() -> None:
    assert violations() == []


@pytest.mark.parametrize(("source", "target"), [("loop", "serve"), ("serve", "ui"), ("data", "demo"),
                                                ("serve", "loop"), ("models", "data"), ("inference", "serve")])
def test_the_table_forbids_what_the_issue_names(source: str, target: str) -> None:
    assert target not in ALLOWED[source]
