"""Self-Instruct seed tasks (spec 4.2.3): the six task types, a jsonl reader that names file, line and field,
and a small built-in generic set (two per type, Chinese and English) for workspaces that bring none."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.errors import located
from llmops.fileio import MAX_FILE_BYTES, read_text_file

TASK_TYPES = {
    "classification": "分类任务",
    "generation": "生成任务",
    "summarization": "总结任务",
    "qa": "问答任务",
    "rewrite": "改写任务",
    "reasoning": "推理任务",
}


@dataclass(frozen=True)
class SeedTask:
    """One Self-Instruct seed task (spec 4.2.3); `input` may be empty."""

    id: str
    task_type: str
    instruction: str
    input: str
    output: str
    is_classification: bool


GENERIC_SEED_TASKS = (
    SeedTask("generic_001", "classification", "Classify the sentiment of this sentence as positive or negative.",
             "The concert last night was wonderful and the band played every song I hoped for.", "positive", True),
    SeedTask("generic_002", "classification", "判断下面这句话的情感倾向是积极还是消极",
             "会议拖了三个小时，最后什么结论都没有。", "消极", True),
    SeedTask("generic_003", "generation", "Write a short email inviting colleagues to a team lunch on Friday.", "",
             "Hi all, let's have a team lunch this Friday at 12:30. Please reply by Thursday so I can book a table. "
             "See you there!", False),
    SeedTask("generic_004", "generation", "写一句鼓励学生坚持阅读的话", "",
             "每天读几页书，日积月累，你会发现世界变得更宽广。", False),
    SeedTask("generic_005", "summarization", "Summarise the following paragraph in one sentence.",
             "Regular exercise strengthens the heart and lungs, helps control weight and improves sleep. Studies "
             "also link it to better mood and memory, and even short daily walks bring measurable benefits.",
             "Regular exercise, even a short daily walk, benefits the heart, weight, sleep, mood and memory.", False),
    SeedTask("generic_006", "summarization", "用一句话概括下面这段话",
             "城市公园为居民提供了休闲和锻炼的场所，还能降低周边气温、改善空气质量。许多城市因此在新区规划中预留了大片绿地。",
             "城市公园方便居民休闲锻炼又改善环境，因此被纳入新区规划。", False),
    SeedTask("generic_007", "qa", "At what temperature does water boil at sea level, in degrees Celsius?", "",
             "At sea level water boils at 100 °C.", False),
    SeedTask("generic_008", "qa", "一年有多少个月？", "", "一年有 12 个月。", False),
    SeedTask("generic_009", "rewrite", "Rewrite this sentence in a more formal tone.",
             "Sorry, we can't make it to the meeting tomorrow.",
             "We regret that we will be unable to attend tomorrow's meeting.", False),
    SeedTask("generic_010", "rewrite", "把下面的句子翻译成英文", "明天早上九点开会。",
             "The meeting is at nine tomorrow morning.", False),
    SeedTask("generic_011", "reasoning", "A train leaves at 9:15 and the journey takes 2 hours 50 minutes. When does "
             "it arrive? Show the calculation.", "", "9:15 + 2:50 = 12:05, so it arrives at 12:05.", False),
    SeedTask("generic_012", "reasoning", "小明有 3 盒铅笔，每盒 12 支，送出 10 支后还剩多少支？请写出计算过程。", "",
             "3 × 12 = 36，36 − 10 = 26，还剩 26 支。", False),
)


def _seed_task(row: Any, path: Path, line: int) -> SeedTask:
    if not isinstance(row, dict):
        raise located(path, line, None, "expected a JSON object")
    unknown = sorted(set(row) - set(SeedTask.__dataclass_fields__))
    if unknown:
        raise located(path, line, unknown[0], "unknown field")
    for field in ("id", "task_type", "instruction", "input", "output"):
        if not isinstance(row.get(field), str):
            raise located(path, line, field, "missing or not a string")
        if field != "input" and not row[field].strip():
            raise located(path, line, field, "must not be empty")
    if row["task_type"] not in TASK_TYPES:
        raise located(path, line, "task_type", f"{row['task_type']!r} is not one of {', '.join(TASK_TYPES)}")
    if not isinstance(row.get("is_classification"), bool):
        raise located(path, line, "is_classification", "missing or not true/false")
    if row["is_classification"] != (row["task_type"] == "classification"):
        raise located(path, line, "is_classification", "must be true exactly for classification tasks")
    return SeedTask(**row)


def read_seed_tasks(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[SeedTask]:
    """Read and validate a seed tasks jsonl file; errors name file, line and field."""
    tasks: list[SeedTask] = []
    seen: set[str] = set()
    for number, text in enumerate(read_text_file(path, max_bytes, "seed tasks file").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise located(path, number, None, f"invalid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise located(path, number, None, "invalid JSON: nested too deeply") from exc
        task = _seed_task(row, path, number)
        if task.id in seen:
            raise located(path, number, "id", f"duplicate id {task.id!r}")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise located(path, None, None, "no seed tasks")
    return tasks
