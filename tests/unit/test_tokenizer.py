"""The demo tokenizer: ids survive a save/reload through AutoTokenizer; ChatML template; special tokens."""

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from llmops.demo.tokenizer import ENDOFTEXT, IM_END, IM_START, save_tokenizer, train_tokenizer

CORPUS = [
    "蓝牙耳机售价199元，支持七天无理由退货。客户问：耳机怎么充电？客服答：请使用原装数据线。",
    "机械键盘的保修期是一年，如有质量问题可以免费换新。感谢您的耐心，祝您购物愉快！",
    "The Bluetooth earbuds cost 199 yuan and can be returned within seven days.",
    "Customer: how do I charge the keyboard? Support: use the original cable. Have a nice day!",
] * 20
LINES = [
    "蓝牙耳机怎么充电？",
    "保修期一年，免费换新。",
    "未在语料中出现的汉字：龘靐齉",
    "How do I return the earbuds within 7 days?",
    "Unseen words: zyxwv QUUX 3.14159 🙂",
    "混合 mixed 文本 with spaces  and\ttabs\nand newlines",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
    trained = train_tokenizer(CORPUS, vocab_size=400)
    folder: Path = tmp_path_factory.mktemp("tokenizer")
    save_tokenizer(trained, folder)
    return trained, AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.parametrize("line", LINES)
def test_reload_keeps_ids_and_decodes_back(
    saved: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase], line: str
) -> None:
    trained, reloaded = saved
    ids = reloaded.encode(line, add_special_tokens=False)
    assert ids == trained.encode(line, add_special_tokens=False)
    assert reloaded.decode(ids) == line


def test_han_characters_never_merge(saved: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]) -> None:
    _, reloaded = saved
    for token in reloaded.tokenize("蓝牙耳机售价199元，支持七天无理由退货。"):
        text = reloaded.convert_tokens_to_string([token])
        assert len(text) <= 1 or not any("\u4e00" <= char <= "\u9fff" for char in text), token


def test_special_tokens(saved: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]) -> None:
    _, reloaded = saved
    assert reloaded.eos_token == IM_END
    assert reloaded.pad_token == ENDOFTEXT
    assert reloaded.convert_ids_to_tokens([0, 1, 2]) == [ENDOFTEXT, IM_START, IM_END]
    assert reloaded.eos_token_id == 2 and reloaded.pad_token_id == 0
    assert reloaded.encode(f"{IM_START}user\nhi{IM_END}", add_special_tokens=False)[0] == 1


def test_chat_template_renders_chatml_with_default_system(
    saved: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase],
) -> None:
    _, reloaded = saved
    messages = [{"role": "user", "content": "耳机多少钱？"}, {"role": "assistant", "content": "199元。"}]
    assert reloaded.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n耳机多少钱？<|im_end|>\n<|im_start|>assistant\n199元。<|im_end|>\n"
    )
    prompt = reloaded.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_generation_tags_mask_exactly_the_assistant_answers(
    saved: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase],
) -> None:
    _, reloaded = saved
    messages = [
        {"role": "user", "content": "耳机多少钱？"},
        {"role": "assistant", "content": "199元。"},
        {"role": "user", "content": "How long is the warranty?"},
        {"role": "assistant", "content": "One year."},
    ]
    encoded = reloaded.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    answer = [token for token, kept in zip(ids, mask, strict=True) if kept]
    assert reloaded.decode(answer) == f"199元。{IM_END}One year.{IM_END}"
