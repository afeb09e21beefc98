"""Merge a LoRA adapter into its base with `llamafactory-cli export` (spec 7.3.2).

The merged model is written to a temporary folder beside the target and renamed into place, so a failed
or interrupted merge leaves nothing half-written. The export YAML and its log go to `runs/<id>/`.
"""

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from llmops.errors import LLMOpsError
from llmops.fileio import write_text_atomic
from llmops.train.configs import config_yaml
from llmops.train.runner import llamafactory_command
from llmops.workspace import Workspace


def export_config(base_model: str, adapter: str, export_dir: Path, template: str) -> dict[str, object]:
    return {
        "model_name_or_path": base_model,
        "adapter_name_or_path": adapter,
        "template": template,
        "finetuning_type": "lora",
        "export_dir": str(export_dir),
        "export_size": 5,
        "export_device": "cpu",
        "export_legacy_format": False,
    }


def merge_adapter(workspace: Workspace, base_model: str, adapter: str, target: Path) -> Path:
    """Merge `adapter` into `base_model` as a full HF folder at `target` (which must not exist yet)."""
    if target.exists():
        raise LLMOpsError(f"{target}: already exists; refusing to overwrite a merged model")
    run_dir = workspace.runs_dir / f"export-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    run_dir.mkdir(parents=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{secrets.token_hex(3)}"
    config_path = run_dir / "export.yaml"
    write_text_atomic(config_path, config_yaml(export_config(base_model, adapter, partial,
                                                             workspace.settings.train.template)))
    log_path = run_dir / "export.log"
    command = [llamafactory_command(workspace), "export", str(config_path)]
    with log_path.open("wb") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
                               cwd=workspace.root)
    if code != 0 or not (partial / "config.json").exists():
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise LLMOpsError(f"merge of {adapter} into {base_model} failed (exit {code}); log {log_path}:\n{tail}")
    os.replace(partial, target)
    return target


def copy_model(source: Path, target: Path) -> Path:
    """Copy a merged model folder to `target` through a temporary folder."""
    if target.exists():
        raise LLMOpsError(f"{target}: already exists")
    partial = target.parent / f".{target.name}.partial-{secrets.token_hex(3)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(source, partial)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise LLMOpsError(f"copy of {source} to {target} failed: {exc}") from exc
    os.replace(partial, target)
    return target

