"""Training configs: spec defaults (golden files), workspace placement, overrides, device, LLaMA-Factory parser."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.errors import LLMOpsError
from llmops.settings import TrainSettings
from llmops.train import configs
from llmops.workspace import Workspace

GOLDEN = Path(__file__).parent / "golden"
BUILDERS = {"cpt": configs.create_cpt_config, "sft": configs.create_sft_config, "dpo": configs.create_dpo_config}


@pytest.mark.parametrize("stage", sorted(BUILDERS))
def test_default_config_matches_golden_file(stage: str) -> None:
    text = configs.config_yaml(BUILDERS[stage]())
    assert text == (GOLDEN / f"{stage}_config.yaml").read_text(encoding="utf-8")


def test_spec_parameters_reach_the_config() -> None:
    cpt = configs.create_cpt_config(model_name="m", max_seq_length=512, lora_r=4, lora_alpha=8)
    assert (cpt["stage"], cpt["cutoff_len"], cpt["lora_rank"], cpt["lora_alpha"]) == ("pt", 512, 4, 8)
    dpo = configs.create_dpo_config(adapter_path=None, pref_beta=0.2)
    assert "adapter_name_or_path" not in dpo and dpo["pref_beta"] == 0.2


def test_write_config_places_it_in_the_workspace(workspace: Workspace) -> None:
    written = configs.write_config(
        workspace, configs.create_sft_config(), ["learning_rate=1e-4", "max_steps=3", "val_size=0.1", "plot_loss="],
        cuda=False,
    )
    assert written.path.parent == workspace.configs_dir
    assert written.path.name.startswith("sft_config_") and written.path.suffix == ".yaml"
    on_disk = yaml.safe_load(written.path.read_text(encoding="utf-8"))
    assert on_disk == written.config
    assert on_disk["dataset_dir"] == str(workspace.data_dir)
    assert on_disk["output_dir"] == str(workspace.root / "checkpoints/sft/sft-lora")
    assert on_disk["learning_rate"] == 1e-4 and on_disk["max_steps"] == 3 and "plot_loss" not in on_disk
    assert on_disk["fp16"] is False and written.notes == ["fp16 turned off: no CUDA device"]
    assert on_disk["model_name_or_path"] == "Qwen/Qwen2-1.5B"


def test_device_adaptation_keeps_precision_with_cuda() -> None:
    config, notes = configs.adapt_to_device({"fp16": True, "bf16": True}, cuda=True)
    assert config == {"fp16": True, "bf16": True} and notes == []
    config, notes = configs.adapt_to_device({"fp16": False, "bf16": True}, cuda=False)
    assert config == {"fp16": False, "bf16": False} and notes == ["bf16 turned off: no CUDA device"]


def _parse(config: dict[str, Any], tmp_path: Path) -> Any:
    from llamafactory.hparams import get_train_args

    return get_train_args(dict(config, output_dir=str(tmp_path / "out")))


@pytest.mark.parametrize("stage", sorted(BUILDERS))
def test_generated_configs_pass_llamafactory_parser(workspace: Workspace, tmp_path: Path, stage: str) -> None:
    written = configs.write_config(workspace, BUILDERS[stage](), ["max_steps=5"], cuda=False)
    model_args, data_args, training_args, finetuning_args, _ = _parse(written.config, tmp_path)
    assert model_args.model_name_or_path == "Qwen/Qwen2-1.5B"
    expected_stage = "pt" if stage == "cpt" else stage
    assert finetuning_args.stage == expected_stage and finetuning_args.finetuning_type == "lora"
    assert data_args.dataset_dir == str(workspace.data_dir)
    assert training_args.max_steps == 5 and not training_args.fp16
    assert finetuning_args.lora_rank == written.config["lora_rank"]


def test_unknown_key_is_rejected_by_llamafactory_parser(workspace: Workspace) -> None:
    config, _ = configs.place_config(workspace, configs.create_cpt_config(), ["lora_rnak=4"], cuda=False)
    with pytest.raises(LLMOpsError, match="lora_rnak"):
        configs.validate_config(config, "cpt")
    configs.validate_config(configs.place_config(workspace, configs.create_cpt_config(), [], cuda=False)[0])


def test_unknown_stage_is_rejected(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="stage"):
        configs.write_config(workspace, {"stage": "ppo"}, cuda=False)
    assert list(workspace.configs_dir.iterdir()) == []


def test_validation_and_early_stopping_pass_llamafactory_parser(tmp_path: Path) -> None:
    config = configs.with_validation(configs.create_sft_config(), val_size=0.2, patience=2, eval_steps=5)
    config, _ = configs.adapt_to_device(config, cuda=False)
    _, data_args, training_args, finetuning_args, _ = _parse(config, tmp_path)
    assert data_args.val_size == 0.2 and finetuning_args.early_stopping_steps == 2
    assert training_args.eval_steps == 5 and training_args.save_steps == 5
    assert training_args.load_best_model_at_end and training_args.metric_for_best_model == "eval_loss"
    plain = configs.with_validation(configs.create_cpt_config(), patience=None)
    assert plain["eval_steps"] == 500 and "early_stopping_steps" not in plain


GOLDEN_ARGS = {"cpt": ("pt", "domain_corpus", "checkpoints/cpt/domain-cpt"), "sft": ("sft", "sft_data",
               "checkpoints/sft/sft-lora"), "dpo": ("dpo", "prefs", "checkpoints/dpo/dpo-lora")}


@pytest.mark.parametrize("stage", sorted(GOLDEN_ARGS))
def test_the_one_builder_renders_the_default_settings_as_the_golden_file(stage: str) -> None:
    name, dataset, output = GOLDEN_ARGS[stage]
    config = configs.stage_config(name, TrainSettings(), dataset, "Qwen/Qwen2-1.5B", output)
    assert configs.config_yaml(config) == (GOLDEN / f"{stage}_config.yaml").read_text(encoding="utf-8")


def test_typed_settings_template_and_overrides_reach_the_config() -> None:
    train = configs.with_stage_values(TrainSettings(template="llama3"), "sft", "test", finetuning_type="full",
                                      max_steps=7)
    sft = configs.stage_config("sft", train, "d", "m", "out", ["learning_rate=1e-4", "deepspeed=ds.json", "fp16="])
    assert sft["template"] == "llama3" and sft["finetuning_type"] == "full" and sft["max_steps"] == 7
    assert not [key for key in sft if key.startswith("lora_")] and "fp16" not in sft
    assert sft["learning_rate"] == 1e-4 and sft["deepspeed"] == "ds.json"
    assert configs.stage_config("pt", train, "d", "m", "out")["template"] == configs.CPT_TEMPLATE
    assert "max_steps" not in configs.stage_config("sft", train, "d", "m", "out", ["max_steps=0"])
    lora = configs.stage_config("sft", train, "d", "m", "out", ["finetuning_type=lora"])
    assert lora["lora_rank"] == 8 and list(lora).index("lora_target") == list(lora).index("finetuning_type") + 1


@pytest.mark.parametrize(("override", "key"), [("lora_rank=abc", "lora_rank"), ("pref_loss=evil", "pref_loss"),
                                               ("lora_dropout=1.5", "lora_dropout"), ("max_steps=-2", "max_steps")])
def test_typed_overrides_are_checked_like_the_settings(override: str, key: str) -> None:
    with pytest.raises(LLMOpsError, match=f"override: {key}: "):
        configs.stage_config("dpo", TrainSettings(), "d", "m", "out", [override])


def test_the_network_whitelist_is_the_typed_settings() -> None:
    for stage, section in configs.STAGE_TRAINING.items():
        assert list(configs.network_hyperparameters(stage)) == list(section.model_fields)
        for name, spec in configs.network_hyperparameters(stage).items():
            assert spec.description == section.model_fields[name].description, name
    assert configs.NETWORK_HYPERPARAMETERS["pref_beta"].stages == ("dpo", "kto")
    assert configs.NETWORK_HYPERPARAMETERS["finetuning_type"].choices == ("lora", "full")
    assert configs.NETWORK_HYPERPARAMETERS["max_steps"].type is int
    assert configs.NETWORK_HYPERPARAMETERS["lora_dropout"].type is float
