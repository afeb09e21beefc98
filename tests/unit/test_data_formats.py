"""Formats: reading with line numbers, validation errors as file:line: field: problem, conversion, dedup."""

import json
from pathlib import Path

import pytest

from llmops.data.formats import (
    convert,
    deduplicate_data,
    detect_format,
    load_valid,
    read_records,
    record_problems,
    validate_data,
    validate_file,
)
from llmops.errors import LLMOpsError

MESSAGES = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "价格？"},
                         {"role": "assistant", "content": "¥309"}]}
SHAREGPT = {"conversations": [{"from": "human", "value": "价格？"}, {"from": "gpt", "value": "¥309"}]}
ALPACA = {"instruction": "价格？", "input": "", "output": "¥309"}
RANKING = {"conversations": [{"role": "user", "content": "hi"}], "chosen": {"role": "assistant", "content": "Hello!"},
           "rejected": {"role": "assistant", "content": "hi"}}


def test_valid_records_of_every_format() -> None:
    for record, fmt in [(MESSAGES, "messages"), (SHAREGPT, "sharegpt"), (ALPACA, "alpaca"), (RANKING, "ranking"),
                        ({"text": "abc"}, "text"), (convert([RANKING], "ranking", "trl")[0], "trl")]:
        assert record_problems(record, fmt) == []
        assert detect_format(record) == fmt
        assert validate_data([record])


@pytest.mark.parametrize(("record", "fmt", "field"), [
    ({"messages": [{"role": "user", "content": "q"}]}, "messages", "messages"),
    ({"messages": [{"role": "bot", "content": "q"}]}, "messages", "messages[0].role"),
    ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}, "messages",
     "messages[0].content"),
    ({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}, "messages",
     "messages[0].role"),
    ({"conversations": [{"from": "user", "value": "q"}, {"from": "gpt", "value": "a"}]}, "sharegpt",
     "conversations[0].from"),
    ({"instruction": "q", "output": ["a"]}, "alpaca", "output"),
    ({**RANKING, "chosen": "Hello"}, "ranking", "chosen"),
    ({**RANKING, "rejected": {"role": "user", "content": "x"}}, "ranking", "rejected.role"),
    ({"text": ""}, "text", "text"),
    ([1, 2], "text", "record"),
])
def test_problems_name_the_field(record: object, fmt: str, field: str) -> None:
    problems = record_problems(record, fmt)
    assert problems and problems[0][0] == field


def test_spec_validate_data_detects_bad_sharegpt() -> None:
    assert validate_data([SHAREGPT])
    assert not validate_data([{"conversations": [{"from": "human"}]}])


def test_validate_file_reports_file_line_field(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(MESSAGES) + "\n\n" + json.dumps({"messages": [{"role": "user", "content": 1}]}) + "\n")
    report = validate_file(path, "messages")
    assert report.rows == 2 and not report.ok
    assert report.errors[0].startswith(f"{path}:3: messages[0].content: expected a string")


def test_json_array_records_carry_their_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([MESSAGES, {"messages": []}], indent=2))
    rows = read_records(path)
    assert [line for line, _ in rows] == [2, 18]
    with pytest.raises(LLMOpsError, match=r"d.json:18: messages: empty"):
        load_valid(path, "messages")


@pytest.mark.parametrize(("content", "message"), [
    (b'{"text": "a"}\n{"text": \n', r"x.jsonl:2: invalid JSON"),
    (b'{"text": "a"}\n\xff\xfe bad\n', r"x.jsonl:2: invalid UTF-8"),
    (b"", r"x.jsonl:1: empty file"),
    (b'{"text": "a"}\n\x00\x01\x02', r"x.jsonl:2: binary file"),
])
def test_malformed_files_give_located_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(LLMOpsError, match=message):
        read_records(path)


def test_a_file_without_records_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[ ]")
    assert validate_file(path, "messages").errors == [f"{path}:1: no records"]


def test_broken_json_array(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[\n {"text": "a"}\n {"text": "b"}\n]')
    with pytest.raises(LLMOpsError, match=r"x.json:3: invalid JSON: expected ',' or ']'"):
        read_records(path)


def test_conversions_round_trip() -> None:
    sharegpt = convert([MESSAGES], "messages", "sharegpt")[0]
    assert sharegpt["conversations"][0] == {"from": "system", "value": "Be brief."}
    assert record_problems(sharegpt, "sharegpt") == []
    assert convert([sharegpt], "sharegpt", "messages") == [MESSAGES]
    alpaca = convert([MESSAGES], "messages", "alpaca")[0]
    assert alpaca == {"instruction": "价格？", "input": "", "output": "¥309", "system": "Be brief."}
    assert convert([alpaca], "alpaca", "messages") == [MESSAGES]
    assert convert([ALPACA], "alpaca", "sharegpt") == [SHAREGPT]
    trl = convert([RANKING], "ranking", "trl")
    assert trl[0]["chosen"] == [{"role": "assistant", "content": "Hello!"}]
    assert convert(trl, "trl", "ranking") == [RANKING]


def test_deduplicate_data_for_every_format() -> None:
    other = {"messages": [{"role": "user", "content": "另一个问题"}, {"role": "assistant", "content": "a"}]}
    same_question = {"messages": [{"role": "user", "content": "价格？"}, {"role": "assistant", "content": "x"},
                                  {"role": "user", "content": "价格？"}, {"role": "assistant", "content": "y"}]}
    assert deduplicate_data([MESSAGES, MESSAGES, other, same_question]) == [MESSAGES, other, same_question]
    assert deduplicate_data([SHAREGPT, SHAREGPT]) == [SHAREGPT]
    assert deduplicate_data([ALPACA, {**ALPACA, "output": "different"}]) == [ALPACA]
    flipped = {**RANKING, "chosen": RANKING["rejected"], "rejected": RANKING["chosen"]}
    assert deduplicate_data([RANKING, RANKING, flipped]) == [RANKING, flipped]
    assert deduplicate_data([{"text": "a"}, {"text": "a "}, {"text": "b"}]) == [{"text": "a"}, {"text": "b"}]
