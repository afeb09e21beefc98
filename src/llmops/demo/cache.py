"""The user's cache of the tiny demo base, and `llmops init --base demo|PATH|HUB_ID` resolved to a base model."""

import os
from pathlib import Path

from llmops.hub import check_hub_id, check_model_folder, looks_like_path

DEMO_BASE = "demo"
BASE_WHAT = "--base (train.base_model)"


def default_cache_dir() -> Path:
    """$LLMOPS_CACHE, else $XDG_CACHE_HOME/llmops, else ~/.cache/llmops."""
    explicit = os.environ.get("LLMOPS_CACHE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "llmops"


def resolve_base(base: str, cache_dir: Path | None = None) -> str:
    """`demo`: the tiny base, built once into the cache (no network); a folder: checked to be a HF model folder
    and made absolute; a hub id: checked to answer within seconds. Returns the value for train.base_model."""
    if base == DEMO_BASE:
        from llmops.demo.base_model import ensure_base_model

        return str(ensure_base_model(cache_dir or default_cache_dir()))
    if looks_like_path(base):
        return str(check_model_folder(Path(base), BASE_WHAT))
    check_hub_id(base, BASE_WHAT)
    return base
