"""The Data tab's actions: preset documents → corpus, Self-Instruct data, preference export, validation."""

import json
from pathlib import Path

from llmops.data.preferences import PreferenceCollector
from llmops.data.registry import list_datasets, publish_dataset
from llmops.ui import data_tab, instructions_panel
from llmops.workspace import Workspace


def test_preset_documents_become_a_registered_corpus(workspace: Workspace, tiny_model_dir: Path) -> None:
    paths, status = data_tab.load_preset(workspace)
    files = paths.splitlines()
    assert files and all((workspace.documents_dir / f).parent == data_tab.preset_folder(workspace) for f in files)
    assert status == f"loaded {len(files)} preset documents"
    workspace = Workspace(workspace.root, (f"data.tokenizer={tiny_model_dir}",))
    report = data_tab.save_corpus(workspace, paths, 64, 0, 0.8)
    assert report.startswith("✅"), report
    [corpus] = [d for d in list_datasets(workspace) if d.kind == "pt"]
    assert corpus.name in report and f"chunks: {corpus.rows}," in report
    assert "longest chunk" in report and "documents read: " in report


def test_corpus_errors_are_shown_not_raised(workspace: Workspace) -> None:
    assert data_tab.save_corpus(workspace, "  \n", 64, 0, 0.8).startswith("❌ documents:")
    assert data_tab.save_corpus(workspace, "missing.txt", 64, 0, 0.8).startswith("❌")
    assert list_datasets(workspace) == []


def test_template_instructions_are_saved_and_previewed(workspace: Workspace) -> None:
    table, status = instructions_panel.generate(workspace, 12, "template")
    assert table.empty and status.startswith(f"❌ {workspace.documents_dir}: no documents"), status
    data_tab.load_preset(workspace)
    table, status = instructions_panel.generate(workspace, 12, "template")
    assert status.startswith("✅ 12 samples saved"), status
    [dataset] = [d for d in list_datasets(workspace) if d.kind == "sft"]
    saved = json.loads((workspace.data_dir / dataset.file_name).read_text(encoding="utf-8"))
    assert len(table) == len(saved) == 12
    assert table["user"].tolist() == [s["messages"][-2]["content"] for s in saved]


def test_llm_mode_needs_an_endpoint_in_the_settings(workspace: Workspace) -> None:
    table, status = instructions_panel.generate(workspace, 5, "llm")
    assert table.empty and status.startswith("❌ Self-Instruct LLM mode: set data.llm_base_url")
    assert "not configured" in instructions_panel.endpoint_text(workspace)


def test_preference_export_and_validation(workspace: Workspace) -> None:
    counts, status = data_tab.export_pairs(workspace)
    assert status.startswith("❌ no valid preference pairs") and counts["votes"].tolist() == [0]
    collector = PreferenceCollector(workspace)
    collector.collect_preference("q1", "good", "bad", "A")
    collector.collect_preference("q2", "same", "same", "B")
    collector.collect_preference("q3", "x", "y", "tie")
    counts, status = data_tab.export_pairs(workspace)
    assert status.startswith("✅ 1 pairs") and "prefs" in status
    assert counts[["votes", "valid_pairs", "identical", "ties"]].values.tolist() == [[3, 1, 1, 1]]
    assert data_tab.validate(workspace, "prefs").startswith("✅")
    assert "prefs" in data_tab.datasets_table(workspace)["name"].tolist()


def test_validation_names_the_broken_line(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("sft") / "broken.json"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    publish_dataset(workspace, "broken", path, [{"messages": messages}], "sft", "messages")
    path.write_text(json.dumps([{"messages": [{"role": "user", "content": 3}]}]), encoding="utf-8")
    result = data_tab.validate(workspace, "broken")
    assert result.startswith("❌") and f"{path}:1: messages[0].content: expected a string" in result
    assert data_tab.validate(workspace, "nope").startswith("❌ dataset 'nope' is not registered")
