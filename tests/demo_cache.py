"""A demo cache (`llmops init --base demo` reads $LLMOPS_CACHE) whose demo-base is the session's tiny model."""

import json
import shutil
from dataclasses import asdict
from pathlib import Path


def seed_demo_cache(cache: Path, tiny_model_dir: Path) -> Path:
    """`cache` with demo-base a copy of `tiny_model_dir`, its build info that of a finished demo build."""
    from llmops.demo.base_model import BUILD_INFO, BaseModelSpec, corpus_digest
    from llmops.demo.preset import preset_texts

    shutil.copytree(tiny_model_dir, cache / "demo-base")
    info_path = cache / "demo-base" / BUILD_INFO
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info.update(spec=asdict(BaseModelSpec()), corpus_sha256=corpus_digest(preset_texts()))
    info_path.write_text(json.dumps(info), encoding="utf-8")
    return cache
