"""The Data tab's actions: preset documents → corpus (process, then save), Self-Instruct data (generate, then
save), eval sets, preference export, validation."""

import asyncio
import json
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.state_holder import SessionState
from gradio.utils import get_upload_folder

from llmops.data.formats import read_records
from llmops.data.preferences import PreferenceCollector
from llmops.data.registry import list_datasets, publish_dataset
from llmops.data.templates import TASK_TYPES
from llmops.ui import data_tab, eval_set_panel, instructions_panel
from llmops.workspace import Workspace


def test_process_shows_the_corpus_and_only_save_registers_it(workspace: Workspace, tiny_model_dir: Path) -> None:
    paths, status = data_tab.load_preset(workspace)
    files = paths.splitlines()
    assert files and all((workspace.documents_dir / f).parent == data_tab.preset_folder(workspace) for f in files)
    assert status == f"loaded {len(files)} preset documents"
    workspace = Workspace(workspace.root, (f"data.tokenizer={tiny_model_dir}",))
    processed, preview, chunks = data_tab.process(workspace, paths, 64, 0, 0.8)
    assert processed is not None and "not saved yet" in preview and "longest chunk" in preview, preview
    assert list_datasets(workspace) == [] and not list(workspace.stage_data_dir("cpt").glob("*.jsonl"))
    assert chunks["text"].tolist() == [r["text"] for r in processed.rows[: data_tab.SAMPLE_CHUNKS]]
    (workspace.documents_dir / "preset" / "late.txt").write_text("A document added after Process.\n")
    report = data_tab.save_corpus(workspace, processed)
    assert report.startswith("✅"), report
    [corpus] = [d for d in list_datasets(workspace) if d.kind == "pt"]
    assert corpus.name in report and f"chunks: {corpus.rows}," in report and "documents read: " in report
    saved = [row for _, row in read_records(workspace.data_dir / corpus.file_name)]
    assert saved == processed.rows


def test_an_upload_empties_the_widget_so_the_next_one_copies_only_its_own_files(workspace: Workspace) -> None:
    folder = Path(get_upload_folder()) / f"once-{workspace.root.name}"
    folder.mkdir(parents=True, exist_ok=True)
    first, second = folder / "hives.md", folder / "tyres.txt"
    first.write_text("Bees need twenty kilograms of honey for winter.\n")
    second.write_text("Find the thorn before fitting the new tube.\n")
    with gr.Blocks() as blocks:
        data_tab.render(workspace)
    [event] = [fn for fn in blocks.fns.values() if any(name == "upload" for _, name in fn.targets)]
    widget = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "documents-upload")
    assert widget in event.outputs
    field, status, emptied = data_tab.upload_once(workspace, [str(first)], "")
    assert emptied is None and status.endswith("documents/uploads`: hives.md") and "1 document " in status
    field, status, _ = data_tab.upload_once(workspace, [str(second)], field)
    assert field.splitlines() == ["uploads/hives.md", "uploads/tyres.txt"]
    assert sorted(p.name for p in (workspace.documents_dir / "uploads").iterdir()) == ["hives.md", "tyres.txt"]


def test_an_emptied_number_field_is_named_not_a_type_error(workspace: Workspace) -> None:
    assert instructions_panel.generate(workspace, None, "template")[2] == (
        "❌ instructions to generate: enter a number (the field is empty)")
    (workspace.documents_dir / "notes.md").write_text("Some notes.\n")
    assert data_tab.process(workspace, "notes.md", None, 0, 0.8)[1].startswith("❌ chunk_size: enter a number")
    assert data_tab.process(workspace, "notes.md", 64, None, 0.8)[1].startswith("❌ chunk_overlap: enter a number")
    for share, seed, field in ((None, 0, "held-out share"), (0.1, None, "seed")):
        status, _ = eval_set_panel.build(workspace, "share", "sft", share, seed, None)
        assert status.startswith(f"❌ {field}: enter a number"), status


def test_corpus_errors_are_shown_not_raised(workspace: Workspace) -> None:
    assert data_tab.process(workspace, "  \n", 64, 0, 0.8)[1].startswith("❌ documents:")
    processed, status, chunks = data_tab.process(workspace, "missing.txt", 64, 0, 0.8)
    assert processed is None and status.startswith("❌") and chunks.empty
    assert data_tab.save_corpus(workspace, None) == "❌ corpus: press Process documents first"
    assert list_datasets(workspace) == []


def test_instructions_are_previewed_by_type_and_saved_as_shown(workspace: Workspace) -> None:
    generated, table, status = instructions_panel.generate(workspace, 12, "template")
    assert generated is None and table.empty
    assert status.startswith(f"❌ {workspace.documents_dir}: no documents"), status
    data_tab.load_preset(workspace)
    generated, table, status = instructions_panel.generate(workspace, 12, "template")
    assert generated is not None and "not saved yet" in status and "by task type: " in status, status
    assert list_datasets(workspace) == []
    order = [TASK_TYPES.index(t) for t in table["task_type"]]
    assert order == sorted(order) and len(set(table["task_type"])) > 1
    assert sorted(table["user"]) == sorted(r["messages"][-2]["content"] for r in generated.records)
    status = instructions_panel.save(workspace, generated)
    assert status.startswith("✅ 12 samples saved"), status
    [dataset] = [d for d in list_datasets(workspace) if d.kind == "sft"]
    saved = json.loads((workspace.data_dir / dataset.file_name).read_text(encoding="utf-8"))
    assert saved == generated.records and len(saved) == 12
    assert instructions_panel.save(workspace, None) == "❌ instructions: press Generate instructions first"


def test_llm_mode_needs_an_endpoint_in_the_settings(workspace: Workspace) -> None:
    generated, table, status = instructions_panel.generate(workspace, 5, "llm")
    assert generated is None and table.empty
    assert status.startswith("❌ Self-Instruct LLM mode: set data.llm_base_url")
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
    assert data_tab.validate(workspace, "").startswith("❌ dataset: choose a registered dataset to validate")


def _sft_rows(count: int) -> list[dict[str, object]]:
    return [{"messages": [{"role": "user", "content": f"question number {i} about topic {i * 7}"},
                          {"role": "assistant", "content": f"answer {i}"}]} for i in range(count)]


def test_eval_set_builder_holds_out_a_share_like_the_cli(workspace: Workspace) -> None:
    status, sample = eval_set_panel.build(workspace, "share", None, 0.2, 0, None)
    assert status.startswith("❌ eval set: no SFT dataset") and sample.empty
    publish_dataset(workspace, "sft_small", workspace.stage_data_dir("sft") / "sft_small.json", _sft_rows(10), "sft",
                    "messages")
    datasets, files = eval_set_panel.source_choices(workspace)
    assert datasets["value"] == "sft_small" and files["choices"] == []
    status, sample = eval_set_panel.build(workspace, "share", "sft_small", 0.2, 0, None)
    assert status.startswith("✅ eval set **eval_") and "removed from SFT dataset **sft_small**: version 2" in status
    [eval_set] = [d for d in list_datasets(workspace) if d.kind == "eval"]
    assert eval_set.rows == 2 and eval_set.name in status
    saved = [row for _, row in read_records(workspace.data_dir / eval_set.file_name)]
    assert sample.to_dict("records") == saved and all(row["reference"] for row in saved)


def test_eval_set_builder_reads_prompt_files_inside_documents_only(workspace: Workspace) -> None:
    (workspace.documents_dir / "uploads").mkdir(parents=True)
    (workspace.documents_dir / "uploads" / "prompts.txt").write_text("first prompt\nsecond prompt\n")
    assert eval_set_panel.prompt_files(workspace) == ["uploads/prompts.txt"]
    status, sample = eval_set_panel.build(workspace, "prompts", None, 0.1, 0, "uploads/prompts.txt")
    assert status.startswith("✅") and sample["prompt"].tolist() == ["first prompt", "second prompt"]
    assert eval_set_panel.build(workspace, "prompts", None, 0.1, 0, "../settings.yaml")[0].startswith("❌")
    assert eval_set_panel.build(workspace, "arena", None, 0.1, 0, None)[0].startswith("❌ eval set from the arena")
    assert [d.kind for d in list_datasets(workspace)] == ["eval"]


def _click(blocks: gr.Blocks, state: SessionState, label: str, inputs: list[Any]) -> list[Any]:
    """Run the click handler of the button labelled `label` as Gradio's queue does, in one browser session."""
    [fn] = [fn for fn in blocks.fns.values()
            if any(getattr(blocks.blocks.get(target or -1), "value", None) == label for target, _ in fn.targets)]
    return list(asyncio.run(blocks.process_api(block_fn=fn, inputs=inputs, state=state))["data"])


def test_save_registers_what_the_session_generated(workspace: Workspace) -> None:
    with gr.Blocks() as blocks:
        data_tab.render(workspace)
    state = SessionState(blocks)
    _click(blocks, state, "Load preset documents", [])
    table, status = _click(blocks, state, "Generate instructions", [6, "template"])[1:]
    assert "not saved yet" in status and list_datasets(workspace) == []
    [status] = _click(blocks, state, "Save instructions", [None])
    [dataset] = list_datasets(workspace)
    assert status.startswith("✅ 6 samples saved") and dataset.name in status
    saved = json.loads((workspace.data_dir / dataset.file_name).read_text(encoding="utf-8"))
    assert sorted(r["messages"][-2]["content"] for r in saved) == sorted(row[1] for row in table["data"])
    assert _click(blocks, SessionState(blocks), "Save instructions", [None]) == [
        "❌ instructions: press Generate instructions first"]
