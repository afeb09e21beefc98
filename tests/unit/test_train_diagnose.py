"""Section-10 failure recognition and progress parsing from the files LLaMA-Factory writes."""

import json
from pathlib import Path

from llmops.train.diagnose import diagnose_log, diagnose_losses
from llmops.train.progress import final_metrics, last_logged_dict, read_progress


def _problems(log: str) -> list[str]:
    return [d.problem for d in diagnose_log(log, "cfg.yaml", "data/llmops/dataset_info.json")]


def test_out_of_memory_gets_the_spec_remedy() -> None:
    found = diagnose_log("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB", "c.yaml", "d.json")
    assert len(found) == 1 and "out of memory" in found[0].problem
    assert "per_device_train_batch_size: 1" in found[0].remedy and "c.yaml" in found[0].remedy
    assert "gradient_checkpointing: true" in found[0].remedy


def test_unregistered_dataset_names_dataset_and_file() -> None:
    log = "ValueError: Undefined dataset shop_sft in dataset_info.json.\n"
    (found,) = diagnose_log(log, "c.yaml", "/ws/data/llmops/dataset_info.json")
    assert "'shop_sft'" in found.problem and "/ws/data/llmops/dataset_info.json" in found.remedy


def test_wrong_data_format_is_recognised() -> None:
    assert _problems("KeyError: 'conversations'") == ["wrong data format: missing field 'conversations' (spec 10.2.1)"]
    assert "wrong data format" in _problems("RuntimeError: Cannot find valid samples, check `data/README.md`")[0]
    assert "does not exist" in _problems("ValueError: File /ws/data/llmops/sft/x.jsonl not found.")[0]


def test_unknown_config_key_is_named() -> None:
    (found,) = diagnose_log("ValueError: Some keys are not used by the HfArgumentParser: ['lora_rnak']", "c.yaml", "d")
    assert "'lora_rnak'" in found.problem and "c.yaml" in found.remedy


def test_clean_log_has_no_diagnosis() -> None:
    assert _problems("{'loss': '1.2', 'grad_norm': '0.5'}\ntrain_loss = 1.2\n") == []


def test_loss_not_converging() -> None:
    assert diagnose_losses([2.0, 1.8, 1.5, 1.2, 1.0], "c.yaml") is None
    flat = diagnose_losses([2.0, 2.1, 2.2, 2.1, 2.3], "c.yaml")
    assert flat is not None and "not converging" in flat.problem and "learning_rate" in flat.remedy
    nan = diagnose_losses([2.0, float("nan")], "c.yaml")
    assert nan is not None and "NaN" in nan.problem
    assert diagnose_losses([3.0, 3.5], "c.yaml") is None


def test_progress_from_trainer_log_and_printed_grad_norm(tmp_path: Path) -> None:
    lines = [
        {"current_steps": 10, "total_steps": 40, "loss": 2.5, "lr": 1e-4, "elapsed_time": "0:00:05",
         "remaining_time": "0:00:15"},
        {"current_steps": 20, "total_steps": 40, "loss": 2.0, "lr": 5e-5, "accuracy": 0.75, "elapsed_time": "0:00:10",
         "remaining_time": "0:00:10"},
        {"current_steps": 20, "total_steps": 40, "eval_loss": 2.2, "accuracy": 0.75, "elapsed_time": "0:00:10",
         "remaining_time": "0:00:10"},
    ]
    (tmp_path / "trainer_log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"current_st')
    log = (" 50%|##| 20/40 {'loss': '2.0', 'grad_norm': '0.75', 'learning_rate': '5e-05', 'epoch': '0.5'}\n"
           "{'eval_loss': '2.2', 'eval_runtime': '0.01', 'epoch': '0.5'}\n")
    progress = read_progress(tmp_path, log, samples_per_step=4)
    assert progress is not None
    assert (progress.step, progress.total, progress.loss, progress.lr) == (20, 40, 2.0, 5e-5)
    assert (progress.eta, progress.grad_norm, progress.accuracy) == ("0:00:10", 0.75, 0.75)
    assert progress.samples_per_second == 8.0 and progress.fraction == 0.5 and progress.eval_loss == 2.2
    assert read_progress(tmp_path / "missing") is None
    assert last_logged_dict("no dicts here") == {}


def test_final_metrics_include_dpo_rewards_and_plots(tmp_path: Path) -> None:
    (tmp_path / "all_results.json").write_text(json.dumps({"train_loss": 0.6, "epoch": 1.0, "x": "text"}))
    history = [{"loss": 0.69, "rewards/accuracies": 0.0, "rewards/margins": 0.0, "step": 1},
               {"loss": 0.5, "rewards/accuracies": 0.9, "rewards/margins": 0.4, "step": 2},
               {"train_loss": 0.6, "step": 2}]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    (tmp_path / "training_loss.png").write_bytes(b"png")
    metrics = final_metrics(tmp_path)
    assert metrics["train_loss"] == 0.6 and "x" not in metrics and metrics["final_loss"] == 0.5
    assert metrics["reward_accuracy"] == 0.9 and metrics["first_reward_accuracy"] == 0.0
    assert metrics["reward_margin"] == 0.4 and metrics["plots"] == ["training_loss.png"]


def test_a_corpus_shorter_than_one_block_names_cutoff_len() -> None:
    log = "RuntimeError: Cannot find sufficient samples, consider increasing dataset size."
    (found,) = diagnose_log(log, "c.yaml", "d.json")
    assert "fewer tokens than one block" in found.problem and "cutoff_len in c.yaml" in found.remedy
