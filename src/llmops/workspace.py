"""The workspace: the spec's folder layout (sections 2.2 and 7.1.2), the database and the settings file.

```
<root>/
  llmops.yaml                    settings (see settings.py)
  llmops.db                      SQLite store (unless settings.database_url says otherwise)
  .llmops/admin_token            bearer token of the gateway's admin endpoints
  data/llmops/{cpt,sft,dpo}/     datasets, registered in data/llmops/dataset_info.json
  checkpoints/{cpt,sft,dpo}/     training outputs
  configs/llmops/                generated LLaMA-Factory YAML
  runs/                          one folder per training run (log, settings)
  models/                        merged models (llamafactory-cli export)
  reports/                       evaluation and demo reports
  documents/                     domain documents (uploads/ from the UI, preset/ of the demo)
```

Paths that come from the network are confined to one of these folders with `Workspace.confine`.
"""

import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine

from llmops import db
from llmops.errors import LLMOpsError
from llmops.fileio import write_text_atomic
from llmops.settings import Settings, load_settings, save_settings, updated

SETTINGS_FILE = "llmops.yaml"
DATABASE_FILE = "llmops.db"
TOKEN_FILE = ".llmops/admin_token"
STAGES = ("cpt", "sft", "dpo")


@dataclass(frozen=True)
class Workspace:
    root: Path
    overrides: tuple[str, ...] = ()

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def data_dir(self) -> Path:
        return self.root / "data" / "llmops"

    @property
    def dataset_info_path(self) -> Path:
        return self.data_dir / "dataset_info.json"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def configs_dir(self) -> Path:
        return self.root / "configs" / "llmops"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def documents_dir(self) -> Path:
        return self.root / "documents"

    @property
    def token_path(self) -> Path:
        return self.root / TOKEN_FILE

    def confine(self, path: Path | str, folder: Path) -> Path:
        """`path` (relative to `folder`, or absolute) with `..` and symlinks resolved; LLMOpsError when the
        result is not inside `folder` (which must lie in the workspace)."""
        root = self.root.resolve()
        inside = folder.resolve()
        if not inside.is_relative_to(root):
            raise LLMOpsError(f"{folder}: not a folder of the workspace {root}")
        try:
            resolved = (inside / path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise LLMOpsError(f"{path}: not a usable path: {exc}") from exc
        if not resolved.is_relative_to(inside):
            raise LLMOpsError(f"{path}: must stay inside {inside}")
        return resolved

    def stage_data_dir(self, stage: str) -> Path:
        return self.data_dir / stage

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.settings_path, list(self.overrides))

    @property
    def database_url(self) -> str:
        return self.settings.database_url or f"sqlite:///{self.root / DATABASE_FILE}"

    @cached_property
    def engine(self) -> Engine:
        return db.connect(self.database_url, self.settings.database_busy_timeout_s)

    def admin_token(self) -> str:
        return self.token_path.read_text(encoding="utf-8").strip()

    def folders(self) -> list[Path]:
        stage_dirs = [self.data_dir / s for s in STAGES] + [self.checkpoints_dir / s for s in STAGES]
        extra = [self.configs_dir, self.runs_dir, self.models_dir, self.reports_dir, self.documents_dir,
                 self.token_path.parent]
        return stage_dirs + extra


def init_workspace(root: Path, base_model: str | None = None, overrides: list[str] | None = None) -> Workspace:
    """Create the layout, settings file, database and admin token; existing files are left as they are.
    `base_model` (a checked folder or hub id) is written into the settings as train.base_model, and the
    `key.sub=value` `overrides` are written too (both checked before anything is created)."""
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise LLMOpsError(f"{root}: exists and is not a folder")
    changed = _changed_settings(root / SETTINGS_FILE, base_model, overrides or [])
    workspace = Workspace(root)
    try:
        for folder in workspace.folders():
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LLMOpsError(f"{root}: cannot create the workspace: {exc.strerror or exc}") from exc
    if not workspace.dataset_info_path.exists():
        write_text_atomic(workspace.dataset_info_path, "{}\n")
    if changed is not None:
        save_settings(changed, workspace.settings_path)
    elif not workspace.settings_path.exists():
        save_settings(Settings(), workspace.settings_path)
    if not workspace.token_path.exists():
        write_text_atomic(workspace.token_path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    workspace.engine.dispose()
    return workspace


def _changed_settings(path: Path, base_model: str | None, overrides: list[str]) -> Settings | None:
    """The settings `init` writes when it changes them; None keeps the file as it is (or the defaults)."""
    if base_model is None and not overrides:
        return None
    settings = load_settings(path if path.is_file() else None, overrides)
    if base_model is None:
        return settings
    return settings.model_copy(update={"train": updated(settings.train, "--base", base_model=base_model)})


def open_workspace(root: Path, overrides: list[str] | None = None) -> Workspace:
    """An initialised workspace, or a clear error saying how to create one."""
    root = root.expanduser().resolve()
    if not (root / SETTINGS_FILE).is_file() or not (root / "data" / "llmops").is_dir():
        raise LLMOpsError(f"{root} is not an llmops workspace (run `llmops init {root}` first)")
    workspace = Workspace(root, tuple(overrides or ()))
    _ = workspace.settings
    return workspace


def current_workspace(overrides: list[str] | None = None) -> Workspace:
    """The workspace in the current folder: where the spec's API (`get_trainer()`, `PreferenceCollector()` …)
    works when it is given none."""
    return open_workspace(Path.cwd(), overrides)
