"""Dataset formats: reading JSON/JSONL with line numbers, validation, conversion and de-duplication.

Formats (one record each):
- text      `{"text": str}`                                            CPT (LLaMA-Factory `columns.prompt=text`)
- messages  `{"messages": [{"role", "content"}, ...]}`                 SFT, the spec's 3.2.2 format
- sharegpt  `{"conversations": [{"from": human|gpt|system, "value"}]}` SFT, LLaMA-Factory's default tags
- alpaca    `{"instruction", "input", "output"}`                         SFT
- ranking   `{"conversations": [{"role","content"}], "chosen": {...}, "rejected": {...}}`  DPO, spec 4.3.2
- trl       `{"prompt": [messages], "chosen": [messages], "rejected": [messages]}`   TRL's conversational DPO
- kto       `{"messages": [{"role", "content"}, ... assistant], "kto_tag": bool}`  KTO (desirable: true)
Errors read `file:line: field: problem`.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.errors import LLMOpsError, located
from llmops.fileio import MAX_FILE_BYTES, read_text_file, write_json_atomic, write_jsonl_atomic

# eval: held-out {prompt, reference?}
FORMATS = ("text", "messages", "sharegpt", "alpaca", "ranking", "trl", "eval", "kto")
Record = dict[str, Any]
Problem = tuple[str, str]  # (field, problem)

_SHAREGPT_ROLE = {"human": "user", "gpt": "assistant", "system": "system"}
_MESSAGES_ROLE = {value: key for key, value in _SHAREGPT_ROLE.items()}


@dataclass(frozen=True)
class ValidationReport:
    path: Path
    format: str
    rows: int
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def decode_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of a regular file of at most `max_bytes`; FIFOs, devices, binary, non-UTF-8 and empty files are
    errors that name the file (and the line)."""
    text = read_text_file(path, max_bytes)
    if not text.strip():
        raise located(path, 1, None, "empty file")
    return text


def read_records(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[tuple[int, Any]]:
    """(line, value) of every record of a `.jsonl` (one per line) or `.json` (an array) file."""
    text = decode_file(path, max_bytes)
    if path.suffix == ".jsonl":
        return read_jsonl_text(path, text)
    return _read_json_array(path, text)


def read_jsonl_text(path: Path, text: str) -> list[tuple[int, Any]]:
    """(line, value) of every non-blank line of jsonl `text` read from `path`; bad JSON names file and line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise located(path, number, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
        except RecursionError as exc:
            raise located(path, number, None, "invalid JSON: nested too deeply") from exc
    return rows


def _read_json_array(path: Path, text: str) -> list[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    index = _skip_space(text, 0)
    if index >= len(text) or text[index] != "[":
        raise located(path, _line_of(text, index), None, "expected a JSON array of records")
    rows: list[tuple[int, Any]] = []
    index = _skip_space(text, index + 1)
    while index < len(text) and text[index] != "]":
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise located(path, exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
        except RecursionError as exc:
            raise located(path, _line_of(text, index), None, "invalid JSON: nested too deeply") from exc
        rows.append((_line_of(text, index), value))
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_space(text, index + 1)
        elif index >= len(text) or text[index] != "]":
            raise located(path, _line_of(text, index), None, "invalid JSON: expected ',' or ']'")
    if index >= len(text):
        raise located(path, _line_of(text, index), None, "invalid JSON: unterminated array")
    if text[index + 1 :].strip():
        raise located(path, _line_of(text, index + 1), None, "invalid JSON: extra data after the array")
    return rows


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _text_field(record: Mapping[str, Any], name: str, *, required: bool = True) -> list[Problem]:
    if name not in record:
        return [(name, "missing")] if required else []
    value = record[name]
    if not isinstance(value, str):
        return [(name, f"expected a string, got {type(value).__name__}")]
    if required and not value.strip():
        return [(name, "empty")]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return [(name, "not valid Unicode (a lone surrogate)")]
    return []


def _turns(value: Any, name: str, role_key: str, content_key: str, roles: Sequence[str]) -> list[Problem]:
    """Problems of a list of turns: each a mapping with a known role and non-empty string content."""
    if not isinstance(value, list):
        return [(name, f"expected a list, got {type(value).__name__}")]
    if not value:
        return [(name, "empty")]
    problems: list[Problem] = []
    for i, turn in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(turn, dict):
            problems.append((where, f"expected an object, got {type(turn).__name__}"))
            continue
        if turn.get(role_key) not in roles:
            problems.append((f"{where}.{role_key}", f"expected one of {', '.join(roles)}, got {turn.get(role_key)!r}"))
        problems += [(f"{where}.{f}", p) for f, p in _text_field(turn, content_key)]
    return problems


def _alternation(value: list[Any], name: str, role_key: str, first: str, second: str, *, end: str) -> list[Problem]:
    """Turns after an optional system turn alternate first/second and the last one is `end`."""
    roles = [turn.get(role_key) for turn in value if isinstance(turn, dict)]
    start = 1 if roles and roles[0] not in (first, second) else 0
    for offset, role in enumerate(roles[start:]):
        expected = first if offset % 2 == 0 else second
        if role != expected:
            return [(f"{name}[{start + offset}].{role_key}", f"expected {expected!r} (turns must alternate)")]
    if len(roles) <= start or roles[-1] != end:
        return [(name, f"the last turn must be {end!r}")]
    return []


def _check_conversation(record: Mapping[str, Any], name: str, keys: tuple[str, str], tags: tuple[str, ...],
                        end: str) -> list[Problem]:
    if name not in record:
        return [(name, "missing")]
    problems = _turns(record[name], name, keys[0], keys[1], tags)
    return problems or _alternation(record[name], name, keys[0], tags[0], tags[1], end=end)


def _check_reply(record: Mapping[str, Any], name: str) -> list[Problem]:
    value = record.get(name)
    if name not in record:
        return [(name, "missing")]
    if not isinstance(value, dict):
        return [(name, f"expected an object, got {type(value).__name__}")]
    problems = [(f"{name}.{f}", p) for f, p in _text_field(value, "content")]
    if value.get("role") != "assistant":
        problems.append((f"{name}.role", f"expected 'assistant', got {value.get('role')!r}"))
    return problems


def record_problems(record: Any, fmt: str) -> list[Problem]:
    """Every (field, problem) of one record in format `fmt`; empty when it is valid."""
    if not isinstance(record, dict):
        return [("record", f"expected a JSON object, got {type(record).__name__}")]
    if fmt == "text":
        return _text_field(record, "text")
    if fmt == "eval":
        return _text_field(record, "prompt") + _text_field(record, "reference", required=False)
    if fmt == "messages":
        return _check_conversation(record, "messages", ("role", "content"), ("user", "assistant", "system"),
                                   "assistant")
    if fmt == "sharegpt":
        return _check_conversation(record, "conversations", ("from", "value"), ("human", "gpt", "system"), "gpt")
    if fmt == "alpaca":
        return (_text_field(record, "instruction") + _text_field(record, "input", required=False)
                + _text_field(record, "output"))
    if fmt == "ranking":
        conversation = _check_conversation(record, "conversations", ("role", "content"),
                                           ("user", "assistant", "system"), "user")
        return conversation + _check_reply(record, "chosen") + _check_reply(record, "rejected")
    if fmt == "kto":
        tag = [] if isinstance(record.get("kto_tag"), bool) else [("kto_tag", "expected true or false")]
        return _check_conversation(record, "messages", ("role", "content"), ("user", "assistant", "system"),
                                   "assistant") + tag
    if fmt == "trl":
        problems = _check_conversation(record, "prompt", ("role", "content"), ("user", "assistant", "system"), "user")
        for name in ("chosen", "rejected"):
            problems += _turns(record.get(name), name, "role", "content", ("assistant",))
        return problems
    raise LLMOpsError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def detect_format(record: Any) -> str:
    """The format a record looks like (by its keys); `messages` when nothing matches."""
    if not isinstance(record, dict):
        return "messages"
    if "prompt" in record and "chosen" in record:
        return "trl"
    if "prompt" in record:
        return "eval"
    if "chosen" in record:
        return "ranking"
    if "kto_tag" in record:
        return "kto"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record:
        return "alpaca"
    if "text" in record:
        return "text"
    return "messages"


def validate_data(data: Sequence[Any], fmt: str | None = None) -> bool:
    """The spec's `validate_data` (4.4.1): True when every record is valid (format detected when None)."""
    return all(not record_problems(item, fmt or detect_format(item)) for item in data)


def validate_file(path: Path, fmt: str | None = None, max_errors: int = 50,
                  max_bytes: int = MAX_FILE_BYTES) -> ValidationReport:
    """Check a file against `fmt` (detected from the first record when None); errors as file:line: field."""
    rows = read_records(path, max_bytes)
    fmt = fmt or detect_format(rows[0][1] if rows else None)
    errors = [] if rows else [str(located(path, 1, None, "no records"))]
    for line, record in rows:
        for name, problem in record_problems(record, fmt):
            if len(errors) < max_errors:
                errors.append(str(located(path, line, name, problem)))
    return ValidationReport(path, fmt, len(rows), errors)


def load_valid(path: Path, fmt: str) -> list[Record]:
    """All records of a file, or an LLMOpsError naming the first bad one."""
    records = []
    for line, record in read_records(path):
        problems = record_problems(record, fmt)
        if problems:
            raise located(path, line, problems[0][0], problems[0][1])
        records.append(record)
    return records


def _message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def to_messages(record: Record, fmt: str) -> Record:
    """A valid messages/sharegpt/alpaca record as a messages record."""
    if fmt == "messages":
        return {"messages": [dict(turn) for turn in record["messages"]]}
    if fmt == "sharegpt":
        turns = [_message(_SHAREGPT_ROLE[t["from"]], t["value"]) for t in record["conversations"]]
        system = record.get("system")
        return {"messages": ([_message("system", system)] if system else []) + turns}
    if fmt == "alpaca":
        query = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        head = [_message("system", record["system"])] if record.get("system") else []
        return {"messages": [*head, _message("user", query), _message("assistant", record["output"])]}
    raise LLMOpsError(f"cannot convert {fmt} to messages")


def from_messages(record: Record, fmt: str) -> Record:
    """A messages record in `fmt` (messages, sharegpt or alpaca; alpaca keeps the last exchange)."""
    turns = record["messages"]
    if fmt == "messages":
        return {"messages": [dict(turn) for turn in turns]}
    if fmt == "sharegpt":
        return {"conversations": [{"from": _MESSAGES_ROLE[t["role"]], "value": t["content"]} for t in turns]}
    if fmt == "alpaca":
        system = [t["content"] for t in turns if t["role"] == "system"]
        converted = {"instruction": turns[-2]["content"], "input": "", "output": turns[-1]["content"]}
        return {**converted, "system": system[0]} if system else converted
    raise LLMOpsError(f"cannot convert messages to {fmt}")


def ranking_to_trl(record: Record) -> Record:
    """The spec's preference pair (4.3.2) in TRL's conversational prompt/chosen/rejected format."""
    return {
        "prompt": [dict(turn) for turn in record["conversations"]],
        "chosen": [dict(record["chosen"])],
        "rejected": [dict(record["rejected"])],
    }


def trl_to_ranking(record: Record) -> Record:
    return {"conversations": [dict(t) for t in record["prompt"]], "chosen": dict(record["chosen"][-1]),
            "rejected": dict(record["rejected"][-1])}


def convert(records: Iterable[Record], source: str, target: str) -> list[Record]:
    """Convert valid records between formats: messages ↔ sharegpt ↔ alpaca, ranking ↔ trl."""
    if source == target:
        return [dict(r) for r in records]
    if {source, target} == {"ranking", "trl"}:
        return [ranking_to_trl(r) if source == "ranking" else trl_to_ranking(r) for r in records]
    return [from_messages(to_messages(r, source), target) for r in records]


def convert_file(source: Path, target: Path, to: str, source_format: str | None = None) -> int:
    """Convert a whole file (validated first; errors name file:line) and write `target` atomically."""
    if target.is_dir():
        raise located(target, None, None, "is a folder; give the file to write")
    rows = read_records(source)
    fmt = source_format or detect_format(rows[0][1] if rows else None)
    if to not in FORMATS:
        raise LLMOpsError(f"unknown format {to!r} (one of {', '.join(FORMATS)})")
    converted = convert(load_valid(source, fmt), fmt, to)
    if target.suffix == ".jsonl":
        return write_jsonl_atomic(target, converted)
    write_json_atomic(target, converted)
    return len(converted)


def dedup_key(record: Record, fmt: str) -> str:
    """What makes two records duplicates: the text; the prompt turns; for pairs prompt + chosen + rejected."""
    if fmt == "text":
        key: Any = record["text"].strip()
    elif fmt == "eval":
        key = record["prompt"].strip()
    elif fmt in ("messages", "sharegpt", "alpaca"):
        key = [t["content"].strip() for t in to_messages(record, fmt)["messages"] if t["role"] != "assistant"]
    elif fmt == "kto":
        key = [[t["content"].strip() for t in record["messages"]], record["kto_tag"]]
    elif fmt == "ranking":
        key = [[t["content"] for t in record["conversations"]], record["chosen"]["content"],
               record["rejected"]["content"]]
    else:
        key = [[t["content"] for t in record[name]] for name in ("prompt", "chosen", "rejected")]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode("utf-8")).hexdigest()


def deduplicate_data(data: Sequence[Record], fmt: str | None = None) -> list[Record]:
    """The spec's `deduplicate_data` (4.4.2) for every format: the first record of each key is kept."""
    seen: set[str] = set()
    unique = []
    for item in data:
        key = dedup_key(item, fmt or detect_format(item))
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
