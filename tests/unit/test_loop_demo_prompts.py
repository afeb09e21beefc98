import json
from pathlib import Path

from llmops.demo.prompts import split_prompts, training_prompts, user_prompts, write_heldout
from llmops.loop.evaluate import EvalItem, load_test_set


def test_held_out_prompts_are_in_no_training_set_and_not_in_the_arena(tmp_path: Path) -> None:
    taken = user_prompts(40, seed=1, exclude=set())
    sft = tmp_path / "sft.json"
    sft.write_text(json.dumps([{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": "x"}]}
                               for p in taken]))
    exclude = training_prompts(sft)
    assert exclude == set(taken)
    split = split_prompts(100, 30, seed=1, exclude=exclude)
    assert (len(split.arena), len(split.heldout)) == (100, 30)
    assert not set(split.heldout) & (set(split.arena) | exclude)
    assert not set(split.arena) & exclude
    assert split_prompts(100, 30, seed=1, exclude=exclude) == split
    heldout = write_heldout(tmp_path / "eval" / "heldout.jsonl", split.heldout)
    assert load_test_set(heldout) == [EvalItem(p) for p in split.heldout]
