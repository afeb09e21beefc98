"""The data layer knows no demo: nothing under llmops/data imports llmops.demo, and template Self-Instruct on a
workspace of other documents (a software licence, a recipe) runs with the generic templates and seed tasks and
says nothing of the demo shop."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import llmops.data
from generic_docs import grounded
from generic_docs import shop_words as _shop_words
from llmops.data.seed_tasks import GENERIC_SEED_TASKS, TASK_TYPES, read_seed_tasks
from llmops.data.self_instruct import SelfInstructGenerator, generate_sft_dataset
from llmops.data.templates import GENERIC_TEMPLATES
from llmops.demo.preset import load_products, preset_texts
from llmops.demo.templates import shop_templates
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

DATA = Path(llmops.data.__file__).parent

LICENCE = """# Example Licence 2.0

Permission is granted to use, copy and modify the software for any purpose, provided that the licence text is
kept with every copy and that changes to the source files are stated in a notice next to them.

A contributor grants each user a licence to the patents that the contribution itself needs. That licence ends
for anyone who claims in court that the software infringes a patent.

Redistribution in binary form must reproduce the notice in the documentation or other materials that come with
the distribution, and the names of the authors may not be used to endorse derived works.

**Q: May I use the software in a commercial project?**
A: Yes, commercial use is allowed as long as the licence text is kept with every copy.

**Q: Do I have to publish my changes?**
A: No, you only have to state in a notice which files you changed.

**Q: What happens if I sue a contributor over a patent?**
A: The patent licence granted to you ends on the date the claim is filed.
"""

RECIPE = """# 番茄炒蛋

番茄炒蛋是一道家常菜，做法简单，营养丰富。先把鸡蛋打散，加少许盐搅匀，再把番茄切成小块备用，葱切成葱花。
热锅放油，油热后倒入蛋液，待蛋液凝固后用铲子划散，盛出备用。锅中再加少许油，放入番茄翻炒出汁。

番茄出汁后把炒好的鸡蛋倒回锅中，加入盐和少许白糖调味，翻炒均匀后撒上葱花即可出锅。整个过程大约需要十分钟，
适合搭配米饭一起吃，也可以根据口味加入少量番茄酱让颜色更红亮，味道更浓郁。

**问：鸡蛋为什么要先炒？**
答：先炒鸡蛋可以让鸡蛋更嫩，也不会被番茄的汁水泡散。

**问：需要放多少糖？**
答：两个番茄大约放半小勺白糖，用来中和番茄的酸味。
"""


def _imports(path: Path) -> list[str]:
    """Every module that `path` imports (relative imports resolved against llmops.data)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = ["llmops", "data", *path.relative_to(DATA).parts[:-1]]
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


def _write_documents(workspace: Workspace) -> None:
    folder = workspace.documents_dir / "mine"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "licence.md").write_text(LICENCE, encoding="utf-8")
    (folder / "recipe.md").write_text(RECIPE, encoding="utf-8")


def test_no_module_of_the_data_layer_imports_the_demo() -> None:
    modules = sorted(DATA.rglob("*.py"))
    assert len(modules) > 5
    offending = {p.name: n for p in modules for n in _imports(p) if re.match(r"llmops\.demo(\.|$)", n)}
    assert offending == {}


def test_importing_self_instruct_loads_no_demo_module() -> None:
    code = ("import sys, llmops.data.self_instruct, llmops.data.templates; "
            "print([m for m in sys.modules if m.startswith('llmops.demo')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def test_template_self_instruct_on_other_documents_says_nothing_of_the_shop(workspace: Workspace) -> None:
    _write_documents(workspace)
    report = generate_sft_dataset(workspace, 12, closing_rate=1.0)
    data = json.loads(report.path.read_text(encoding="utf-8"))
    assert len(data) == 12 == report.dataset.rows
    assert set(report.stats.by_type) == {"generation", "summarization", "qa", "rewrite"}  # no lists, no numbers
    assert report.stats.closings == 12
    assert _shop_words(json.dumps(data, ensure_ascii=False)) == []
    closings = GENERIC_TEMPLATES.closings_en + GENERIC_TEMPLATES.closings_zh
    for record in data:
        answer = record["messages"][-1]["content"]
        closing = next(c for c in closings if answer.endswith(c))
        assert grounded(answer.removesuffix(closing).strip(), LICENCE + RECIPE)  # read out of the documents


def test_the_spec_api_reads_the_workspace_in_the_current_folder(workspace: Workspace,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace.root)
    with pytest.raises(LLMOpsError, match=re.escape(f"{workspace.documents_dir}: no documents")):
        SelfInstructGenerator().generate_instructions(num_instructions=3)
    _write_documents(workspace)
    generator = SelfInstructGenerator()
    data = generator.generate_instructions(num_instructions=6)
    assert len(data) == 6 and _shop_words(json.dumps(data, ensure_ascii=False)) == []
    path = generator.save_data(data, workspace.stage_data_dir("sft") / "sft_data.json")
    assert json.loads(path.read_text(encoding="utf-8")) == data


def test_the_same_documents_give_shop_tasks_only_with_the_shop_templates() -> None:
    texts = preset_texts()
    generic = SelfInstructGenerator(texts, seed=2)
    shop = SelfInstructGenerator(texts, templates=shop_templates(load_products()), seed=2)
    assert len(generic.generate_instructions(30)) == len(shop.generate_instructions(30)) == 30
    assert set(generic.stats.by_type) == set(shop.stats.by_type) == set(TASK_TYPES)
    shop_instructions = {r["messages"][-2]["content"].split("\n")[0] for r in shop.generate_instructions(60)}
    generic_instructions = {r["messages"][-2]["content"].split("\n")[0] for r in generic.generate_instructions(60)}
    assert shop_instructions & generic_instructions <= {i for i in generic_instructions if "?" in i or "？" in i}


def test_the_generic_seed_tasks_are_valid_cover_every_type_and_are_not_the_shops(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(vars(t), ensure_ascii=False) + "\n" for t in GENERIC_SEED_TASKS),
                    encoding="utf-8")
    assert read_seed_tasks(path) == list(GENERIC_SEED_TASKS)
    assert {t.task_type for t in GENERIC_SEED_TASKS} == set(TASK_TYPES)
    assert _shop_words(path.read_text(encoding="utf-8")) == []
    generator = SelfInstructGenerator([])
    assert [t.instruction for t in generator.seed_tasks] == [t.instruction for t in GENERIC_SEED_TASKS]
