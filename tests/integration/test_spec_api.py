"""The spec's Python API (appendix B of the guide) run as written, in a workspace that is the current folder.

The appendix's block is pasted below as it stands. Only two things are bound to the test: the spec's module
names, which are files of its own project (`src/search_engine/training_tab/*.py`), become the llmops modules
that hold those classes, and its base model `Qwen/Qwen2-1.5B` becomes the tiny model; `config` is a tiny SFT
config and the adapter sits at the spec's own path, `checkpoints/sft/sft-lora`.
"""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from llmops.data.registry import list_datasets, publish_dataset
from llmops.errors import LLMOpsError
from llmops.train.configs import apply_config_overrides, create_sft_config
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration

APPENDIX_B = '''
# 训练 API
from llamafactory_trainer import get_trainer

trainer = get_trainer()
trainer.start_training(config)
trainer.stop_training()
trainer.get_status()

# 数据生成 API
from self_instruct_generator import SelfInstructGenerator

generator = SelfInstructGenerator()
data = generator.generate_instructions(num_instructions=100)
generator.save_data(data, "data/llmops/sft/sft_data.json")

# 偏好收集 API
from preference_collector import PreferenceCollector

collector = PreferenceCollector()
collector.collect_preference(
    question="...",
    response_a="...",
    response_b="...",
    choice="A"
)

# 推理 API
from inference_model import InferenceModel

model = InferenceModel()
model.load_model("chat-v1", "Qwen/Qwen2-1.5B", "checkpoints/sft/sft-lora")
response = model.generate("chat-v1", "你好", max_length=512)
'''

SPEC_MODULES = {
    "llamafactory_trainer": "llmops.train.runner",
    "self_instruct_generator": "llmops.data.self_instruct",
    "preference_collector": "llmops.data.preferences",
    "inference_model": "llmops.inference.engine",
}
TINY = ["max_steps=2", "logging_steps=1", "per_device_train_batch_size=2", "gradient_accumulation_steps=1",
        "warmup_steps=0", "cutoff_len=64", "save_steps=1000"]
DOCUMENT = """# Licences

A permissive licence is a licence that lets anyone reuse the code with few conditions.
The MIT licence asks only that the copyright notice is kept. The Apache licence 2.0 adds a patent grant.
A copyleft licence requires that changed versions are shared under the same terms.

Common licences:
- MIT
- Apache-2.0
- GPL-3.0
"""


def appendix_b() -> str:
    """The block with the spec's module names mapped to ours and its base model bound to `BASE`."""
    code = APPENDIX_B.replace('"Qwen/Qwen2-1.5B"', "BASE")
    for spec, ours in SPEC_MODULES.items():
        code = code.replace(f"from {spec} import", f"from {ours} import")
    return code


def _tiny_adapter(base: Path, out: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(str(out))


def _prepared(workspace: Workspace, tiny_model_dir: Path) -> dict[str, Any]:
    """The names appendix B leaves to its reader: `config` (a tiny SFT run) and `BASE`; documents and an
    adapter where the block expects them."""
    rows = [{"messages": [{"role": "user", "content": f"What does licence {i} allow?"},
                          {"role": "assistant", "content": "Reuse with the notice kept."}]} for i in range(8)]
    publish_dataset(workspace, "sft_seed", workspace.stage_data_dir("sft") / "sft_seed.json", rows, "sft", "messages")
    (workspace.documents_dir).mkdir(exist_ok=True)
    (workspace.documents_dir / "licences.md").write_text(DOCUMENT, encoding="utf-8")
    _tiny_adapter(tiny_model_dir, workspace.checkpoints_dir / "sft" / "sft-lora")
    config = apply_config_overrides(create_sft_config(str(tiny_model_dir), "sft_seed", "checkpoints/sft/spec-api"),
                                    TINY)
    return {"config": config, "BASE": str(tiny_model_dir)}


def test_appendix_b_runs_as_written(workspace: Workspace, tiny_model_dir: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    names = _prepared(workspace, tiny_model_dir)
    monkeypatch.chdir(workspace.root)
    exec(appendix_b(), names)  # the spec's own code, pasted above

    trainer, model = names["trainer"], names["model"]
    try:
        (stopped,) = trainer.list_runs()
        assert trainer.get_status().id == stopped.id and trainer.get_status().status == "stopped"
        saved = {d.name: d for d in list_datasets(workspace)}["sft_data"]
        assert saved.file_name == "sft/sft_data.json" and saved.rows == len(names["data"]) > 0
        entry = json.loads(workspace.dataset_info_path.read_text(encoding="utf-8"))["sft_data"]
        assert entry["file_name"] == "sft/sft_data.json" and entry["formatting"] == "sharegpt"
        assert isinstance(names["response"], str) and names["response"]
        assert model.chat("chat-v1", [{"role": "user", "content": "你好"}], max_tokens=4).text is not None
    finally:
        model.close()


def test_get_status_follows_the_current_run_to_its_end(workspace: Workspace, tiny_model_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = _prepared(workspace, tiny_model_dir)["config"]
    monkeypatch.chdir(workspace.root)
    from llmops.train.runner import get_trainer

    with pytest.raises(LLMOpsError, match="no training run"):
        get_trainer().get_status()
    run_id = get_trainer().start_training(config)
    deadline = time.monotonic() + 300
    while not get_trainer().get_status().finished and time.monotonic() < deadline:
        time.sleep(0.5)
    status = get_trainer().get_status()
    assert (status.id, status.status) == (run_id, "succeeded"), get_trainer().logs(run_id, tail=30)


def test_the_spec_api_outside_a_workspace_says_how_to_make_one(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from llmops.data.preferences import PreferenceCollector
    from llmops.train.runner import get_trainer

    for call in (get_trainer, PreferenceCollector):
        with pytest.raises(LLMOpsError, match=r"is not an llmops workspace \(run `llmops init"):
            call()
