"""Where a base model or tokenizer comes from: a local folder, or a Hugging Face hub id checked in seconds.

transformers retries an unreachable hub for about 40 s before it fails; `check_model_source` answers within
`HUB_TIMEOUT_S` (at once with HF_HUB_OFFLINE set) with advice on how to work offline.
"""

import os
from pathlib import Path

from llmops.errors import LLMOpsError

HUB_TIMEOUT_S = 5.0
OFFLINE_ADVICE = ("work offline with `llmops init DIR --base demo` (the tiny demo base) or `--base PATH` (a local "
                  "model folder), or point train.base_model (and data.tokenizer) at a folder with "
                  "`--set train.base_model=PATH`")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def looks_like_path(name: str) -> bool:
    """A folder name rather than a hub id `owner/name`: absolute, relative (./ ../ ~) or existing."""
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists() or name.count("/") != 1


def check_model_folder(folder: Path, what: str) -> Path:
    """`folder` resolved, or an LLMOpsError unless it is a HF model folder (config.json inside)."""
    resolved = folder.expanduser().resolve()
    if not resolved.is_dir():
        raise LLMOpsError(f"{what} {resolved}: no such folder ({OFFLINE_ADVICE})")
    if not (resolved / "config.json").is_file():
        raise LLMOpsError(f"{what} {resolved}: not a model folder (config.json missing)")
    return resolved


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def check_hub_id(repo_id: str, what: str) -> None:
    """Nothing when `repo_id` is in the local HF cache or the hub answers within HUB_TIMEOUT_S; else LLMOpsError."""
    if _cached(repo_id):
        return
    if _offline():
        raise LLMOpsError(f"{what} {repo_id}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                          f"{OFFLINE_ADVICE}")
    import httpx
    from huggingface_hub import model_info
    from huggingface_hub.errors import HfHubHTTPError

    try:
        model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except (HfHubHTTPError, httpx.HTTPError, OSError, ValueError) as exc:
        raise LLMOpsError(f"{what} {repo_id}: the Hugging Face hub cannot be reached or has no such model "
                          f"({type(exc).__name__}); {OFFLINE_ADVICE}") from exc


def check_model_source(name: str, what: str) -> None:
    """A folder must exist (tokenizer) or a hub id must answer quickly; `what` names the setting or option."""
    if not name:
        raise LLMOpsError(f"{what}: empty; {OFFLINE_ADVICE}")
    if looks_like_path(name):
        if not Path(name).expanduser().is_dir():
            raise LLMOpsError(f"{what} {name}: no such folder; {OFFLINE_ADVICE}")
        return
    check_hub_id(name, what)
