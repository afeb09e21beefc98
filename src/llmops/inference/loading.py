"""Loading a registered version into the embedded engine, and the serving defaults of sampling.

A merged version is a whole model folder; an adapter version is a LoRA on its base model. Every caller (the
gateway, the loop's evaluation, the demo) loads versions through `load_version`, so the rule exists once.
"""

from typing import Any

from llmops.inference.engine import InferenceModel
from llmops.inference.types import Sampling
from llmops.models.registry import ModelVersion
from llmops.settings import ServeSettings


def load_version(engine: InferenceModel, version: ModelVersion) -> None:
    """Load `version` into `engine` under its name (once): the merged folder, or its LoRA on its base."""
    if version.merged:
        engine.load_model(version.name, version.path)
    else:
        engine.load_model(version.name, version.base_model, version.path)


def serving_sampling(settings: ServeSettings, **requested: Any) -> Sampling:
    """Sampling from the `serve` settings' defaults, with each requested value that is not None on top."""
    chosen = {name: getattr(settings, name) for name in ("temperature", "top_p", "top_k", "repetition_penalty")}
    chosen.update({name: value for name, value in requested.items() if value is not None})
    chosen.setdefault("max_tokens", settings.max_new_tokens)
    return Sampling(**chosen)
