"""A training stage refuses, before any run or config, a dataset it cannot train on: one registered for another
stage (a CPT corpus given to SFT) or one that is registered nowhere."""

import re
from pathlib import Path

import pytest

from llmops.data.registry import publish_dataset
from llmops.errors import LLMOpsError
from llmops.train.pipeline import plan_stage
from llmops.workspace import Workspace

SFT = [{"messages": [{"role": "user", "content": "What is the chlorine target?"},
                     {"role": "assistant", "content": "0.5 to 1.5 mg/L."}]}]


def test_a_stage_trains_only_on_datasets_of_its_kind(workspace: Workspace, tiny_model_dir: Path) -> None:
    publish_dataset(workspace, "corpus", workspace.stage_data_dir("cpt") / "corpus.jsonl", [{"text": "a"}], "pt",
                    "text")
    publish_dataset(workspace, "chats", workspace.stage_data_dir("sft") / "chats.json", SFT, "sft", "messages")
    base = str(tiny_model_dir)
    assert plan_stage(workspace, "sft", "chats", base_model=base).config["dataset"] == "chats"
    with pytest.raises(LLMOpsError, match=re.escape("dataset 'corpus' is of kind pt: the sft stage trains on sft "
                                                    "datasets")):
        plan_stage(workspace, "sft", "chats,corpus", base_model=base)
    with pytest.raises(LLMOpsError, match="dataset 'chats' is of kind sft: the pt stage"):
        plan_stage(workspace, "pt", "chats", base_model=base)
    with pytest.raises(LLMOpsError, match=re.escape(f"{workspace.dataset_info_path}: dataset 'nosuch' is not "
                                                    "registered")):
        plan_stage(workspace, "sft", "nosuch", base_model=base)
