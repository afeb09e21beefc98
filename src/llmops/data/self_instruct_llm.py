"""Self-Instruct's bootstrap (Wang et al., 2022) against any OpenAI-compatible endpoint.

Each round shows the model 8 instructions (seed tasks mixed with up to 2 machine ones) and keeps the new
instructions it proposes that pass the length and keyword filters and the ROUGE-L novelty filter. The model
then says whether each kept task is a classification task, and writes one instance: output-first (class
label, then input) for classification, input-first otherwise. Retries and timeouts are the `openai`
client's; an endpoint that keeps failing is an LLMOpsError.
"""

import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import openai
from rich.progress import Progress

from llmops.data.rouge import RougePool, tokenize
from llmops.errors import LLMOpsError
from llmops.settings import DataSettings

PROMPT_INSTRUCTIONS = 8
MACHINE_IN_PROMPT = 2
MIN_TOKENS, MAX_TOKENS = 3, 150
BLOCKED = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
           "draw", "plot", "go to", "video", "audio", "flowchart", "diagram", "图片", "图像", "视频", "画图", "音频")
_NUMBERED = re.compile(r"^\s*\d+\s*[.、):：]\s*", re.MULTILINE)
_LABEL_INPUT = re.compile(r"(?:class )?label\s*[:：]\s*(.+?)\s*\n\s*(?:input|sentence|text)\s*[:：]\s*(.+?)"
                          r"(?=\n\s*(?:class )?label\s*[:：]|\Z)", re.IGNORECASE | re.DOTALL)
_INPUT_OUTPUT = re.compile(r"(?:input\s*[:：]\s*(.*?)\s*\n\s*)?output\s*[:：]\s*(.+?)"
                           r"(?=\n\s*(?:example\s*\d+|input\s*[:：]|output\s*[:：])|\Z)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class LLMEndpoint:
    """An OpenAI-compatible chat endpoint."""

    base_url: str
    model: str
    api_key: str = "EMPTY"
    timeout_s: float = 60.0
    max_retries: int = 3
    temperature: float = 0.7
    max_tokens: int = 512


def settings_endpoint(settings: DataSettings, base_url: str = "", model: str = "", api_key: str = "",
                      timeout_s: float = 60.0, max_retries: int = 3) -> LLMEndpoint:
    """The endpoint of the settings (data.llm_base_url, data.llm_model, the key in the environment variable
    data.llm_api_key_env); non-empty arguments (the CLI's flags) replace them. The UI passes none."""
    endpoint = LLMEndpoint(base_url or settings.llm_base_url, model or settings.llm_model,
                           api_key or os.environ.get(settings.llm_api_key_env, "") or "EMPTY", timeout_s,
                           max_retries)
    if not (endpoint.base_url and endpoint.model):
        raise LLMOpsError("Self-Instruct LLM mode: set data.llm_base_url and data.llm_model in the workspace "
                          "settings (or --base-url and --model on the CLI)")
    return endpoint


@dataclass(frozen=True)
class Task:
    instruction: str
    input: str
    output: str
    is_classification: bool


@dataclass
class BootstrapStats:
    requests: int = 0
    candidates: int = 0
    rejected_filter: int = 0
    rejected_similar: int = 0
    rejected_instance: int = 0
    accepted: int = 0


@dataclass
class Bootstrap:
    endpoint: LLMEndpoint
    seed_tasks: Sequence[Task]
    rouge_threshold: float = 0.7
    seed: int = 0
    stats: BootstrapStats = field(default_factory=BootstrapStats)

    def __post_init__(self) -> None:
        if not self.seed_tasks:
            raise LLMOpsError("Self-Instruct LLM mode needs seed tasks")
        self._client = openai.OpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key,
                                     timeout=self.endpoint.timeout_s, max_retries=self.endpoint.max_retries)
        self._random = random.Random(self.seed)
        self._pool = RougePool(t.instruction for t in self.seed_tasks)

    def complete(self, prompt: str) -> str:
        """One chat completion; connection errors and timeouts are retried by the client, then reported."""
        self.stats.requests += 1
        try:
            response = self._client.chat.completions.create(
                model=self.endpoint.model, messages=[{"role": "user", "content": prompt}],
                temperature=self.endpoint.temperature, max_tokens=self.endpoint.max_tokens)
        except openai.OpenAIError as exc:
            raise LLMOpsError(f"Self-Instruct endpoint {self.endpoint.base_url}: {exc}") from exc
        return (response.choices[0].message.content or "") if response.choices else ""

    def run(self, count: int, progress: Progress | None = None) -> list[Task]:
        """Up to `count` new tasks; stops after 5 requests per wanted task if the model runs dry."""
        tasks: list[Task] = []
        bar = progress.add_task("self-instruct (LLM)", total=count) if progress else None
        while len(tasks) < count and self.stats.requests < 5 * count:
            for instruction in self.propose(tasks):
                task = self.instance(instruction) if len(tasks) < count else None
                if task is None:
                    continue
                tasks.append(task)
                self.stats.accepted += 1
                if progress and bar is not None:
                    progress.advance(bar)
        return tasks

    def propose(self, machine: Sequence[Task]) -> list[str]:
        """New instructions from one bootstrap prompt that pass the filters, added to the novelty pool."""
        shown = self._random.sample(list(machine), min(MACHINE_IN_PROMPT, len(machine)))
        seeds = self._random.sample(list(self.seed_tasks), min(PROMPT_INSTRUCTIONS - len(shown),
                                                               len(self.seed_tasks)))
        instructions = [t.instruction for t in seeds + shown]
        self._random.shuffle(instructions)
        prompt = "Come up with a series of tasks:\n" + "".join(
            f"{i}. {text}\n" for i, text in enumerate(instructions, start=1)) + f"{len(instructions) + 1}."
        accepted = []
        for candidate in parse_instructions(self.complete(prompt)):
            self.stats.candidates += 1
            if not passes_filters(candidate):
                self.stats.rejected_filter += 1
            elif self._pool.max_score(candidate) >= self.rouge_threshold:
                self.stats.rejected_similar += 1
            else:
                self._pool.add(candidate)
                accepted.append(candidate)
        return accepted

    def instance(self, instruction: str) -> Task | None:
        """Classify the task, then ask for one instance of it (output-first for classification)."""
        answer = self.complete(
            "Can the following task be regarded as a classification task with finite output labels? "
            f"Answer Yes or No.\n\nTask: {instruction}\nIs it classification?")
        is_classification = answer.strip().lower().startswith(("yes", "是"))
        if is_classification:
            text = self.complete(
                "Given the classification task definition and the class labels, generate an input that "
                "corresponds to each of the class labels. Write each as 'Class label: …' then 'Input: …'.\n\n"
                f"Task: {instruction}")
            pairs = _LABEL_INPUT.findall(text)
            task = Task(instruction, pairs[0][1].strip(), pairs[0][0].strip(), True) if pairs else None
        else:
            text = self.complete(
                "Come up with an example for the following task. If the task needs an input, write "
                "'Input: …' then 'Output: …'; otherwise write only 'Output: …'.\n\n"
                f"Task: {instruction}")
            found = _INPUT_OUTPUT.search(text)
            task = Task(instruction, (found.group(1) or "").strip(), found.group(2).strip(), False) if found else None
        if task is None or not task.output:
            self.stats.rejected_instance += 1
            return None
        return task


def parse_instructions(text: str) -> list[str]:
    """The numbered instructions of a bootstrap response (the first continues the prompt's last number)."""
    parts = _NUMBERED.split("\n" + text.strip())
    return [" ".join(part.split()) for part in parts if part.strip()]


def passes_filters(instruction: str) -> bool:
    """Self-Instruct's heuristics: 3–150 tokens, no task a text model cannot do, not starting with punctuation."""
    tokens = tokenize(instruction)
    lowered = instruction.lower()
    if not MIN_TOKENS <= len(tokens) <= MAX_TOKENS:
        return False
    if any(re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered) for word in BLOCKED):
        return False
    return not (lowered.startswith("write a program") or not instruction[0].isalnum())
