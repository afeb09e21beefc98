"""One typed settings schema for the whole system.

Settings come from the workspace's `llmops.yaml`, then `key.sub=value` overrides. Unknown keys are
rejected with their dotted name; wrong types name the file and the key. Every field is documented
once, here, through its `description`.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.errors import LLMOpsError
from llmops.fileio import write_text_atomic


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSettings(_Section):
    tokenizer: str = Field("", description="Tokenizer (HF folder or hub id) used to count CPT chunk tokens; "
                           "empty means the workspace's base model.")
    chunk_size: int = Field(512, ge=16, le=32768, description="CPT chunk size in tokens (spec: 512–2048).")
    chunk_overlap: int = Field(0, ge=0, description="Tokens shared by consecutive chunks of one document.")
    near_dup_threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold for near-duplicates.")
    num_instructions: int = Field(100, ge=1, description="Self-Instruct: instructions to generate.")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="Self-Instruct: reject a candidate whose "
                                   "max ROUGE-L against the pool is at least this.")
    system_prompt: str = Field("", description="System message of SFT samples; empty: none, so training and "
                               "inference both use the chat template's default system prompt.")
    closing_rate: float = Field(0.15, ge=0, le=1, description="Self-Instruct: share of answers that end with a "
                                "polite closing phrase (e.g. 'Hope this helps!', '祝您购物愉快！').")
    max_votes_per_user_per_day: int = Field(0, ge=0, description="Preference export: cap per user and day "
                                            "(0 = no cap).")


class TrainSettings(_Section):
    base_model: str = Field("Qwen/Qwen2-1.5B", description="Base model for CPT (HF folder or hub id).")
    template: str = Field("qwen", description="LLaMA-Factory chat template.")
    llamafactory_cli: str = Field("llamafactory-cli", description="The LLaMA-Factory command to run; the default "
                                  "is the one installed beside the Python that runs llmops.")
    stop_grace_s: float = Field(20.0, gt=0, description="Stopping a run: seconds to wait after SIGINT and again "
                                "after SIGTERM before SIGKILL.")
    log_tail_lines: int = Field(40, ge=1, description="Lines of the log kept as the error of a failed run.")


class ServeSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the gateway binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the gateway listens on.")
    max_batch_size: int = Field(32, ge=1, description="Continuous batching: most requests decoded together.")
    batch_wait_ms: float = Field(5.0, ge=0, description="Continuous batching: when idle, wait for requests that "
                                 "arrive less than this apart to start together (at most 10× this).")
    max_new_tokens: int = Field(128, ge=1, description="Default and upper limit of generated tokens.")
    temperature: float = Field(0.7, ge=0, description="Default sampling temperature (spec 10.3.2).")
    top_p: float = Field(0.9, gt=0, le=1, description="Default nucleus sampling (spec 10.3.2).")
    top_k: int = Field(50, ge=0, description="Default top-k sampling (spec 10.3.2).")
    repetition_penalty: float = Field(1.1, gt=0, description="Default repetition penalty (spec 10.3.2).")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest accepted HTTP request body.")
    max_prompt_chars: int = Field(8000, ge=1, description="Longest accepted prompt (all messages together).")


class LoopSettings(_Section):
    min_samples: int = Field(100, ge=1, description="DPO trigger: new valid pairs needed (spec 6.3.2).")
    days_threshold: float = Field(7.0, ge=0, description="DPO trigger: days since the last DPO run.")
    gate_lower_bound: float = Field(0.5, ge=0, le=1, description="Promotion gate: the win rate's 95% interval "
                                    "lower bound must exceed this.")
    rollout_stages: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        [0.05, 0.2, 0.5, 1.0], description="Canary traffic shares, in order, each in (0, 1].")
    stage_min_requests: int = Field(100, ge=0, description="Requests a stage needs before it may advance.")
    stage_min_minutes: float = Field(0.0, ge=0, description="Minutes a stage lasts at least.")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Guardrail: roll back above this error rate.")
    max_latency_p99_ms: float = Field(2000.0, gt=0, description="Guardrail: roll back above this p99 latency.")
    max_feedback_drop: float = Field(0.2, ge=0, le=1, description="Guardrail: roll back when the candidate's share "
                                     "of thumbs-up falls this fraction below production's.")
    target_samples: int = Field(300, ge=1, description="Collection plan (spec 6.3.1): pairs a cycle aims for.")
    optimal_samples: int = Field(500, ge=1, description="Collection plan (spec 6.3.1): the best number of pairs.")
    guardrail_min_requests: int = Field(10, ge=1, description="Guardrails judge a stage only once the candidate "
                                        "served this many requests in it.")
    eval_set: str = Field("data/llmops/eval/heldout.jsonl", description="Held-out evaluation prompts (jsonl of "
                          "{prompt, reference}), relative to the workspace; no training set may contain them.")
    eval_samples: int = Field(1, ge=1, description="Answers sampled per held-out prompt and model.")
    bootstrap_samples: int = Field(2000, ge=100, description="Bootstrap resamples for the win rate's interval.")
    judge: Literal["reference", "llm", "human"] = Field("reference", description="Judge of `loop tick`'s "
                                                        "evaluation: reference (ROUGE-L), llm or human arena votes.")
    judge_url: str = Field("", description="LLM judge: base URL of an OpenAI-compatible endpoint.")
    judge_model: str = Field("", description="LLM judge: model name at judge_url.")
    judge_api_key_env: str = Field("OPENAI_API_KEY", description="LLM judge: environment variable of the API key.")
    dpo_overrides: list[str] = Field([], description="LLaMA-Factory config overrides (key=value) of the loop's "
                                     "DPO runs, e.g. pref_ftx=1.0 or max_steps=80.")


class Settings(_Section):
    database_url: str = Field("", description="SQLAlchemy URL of the store; empty means the workspace's SQLite.")
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    serve: ServeSettings = ServeSettings()
    loop: LoopSettings = LoopSettings()


def _describe(error: ValidationError, source: str) -> LLMOpsError:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{source}: {key}: {message}")
    return LLMOpsError("\n".join(problems))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value parsed as YAML scalar or list)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise LLMOpsError(f"override {text!r}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError) as exc:
        raise LLMOpsError(f"override {text!r}: value is not valid YAML: {exc}") from exc
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with every `key.sub=value` override applied."""
    merged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise LLMOpsError(f"override {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return merged


def read_settings_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise LLMOpsError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LLMOpsError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return raw


def load_settings(path: Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Settings from a YAML file (missing file = defaults) with `key.sub=value` overrides applied."""
    raw = read_settings_file(path) if path else {}
    merged = apply_overrides(raw, overrides or [])
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise _describe(exc, str(path) if path else "settings") from exc


def settings_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.model_dump(), sort_keys=False, allow_unicode=True)


def save_settings(settings: Settings, path: Path) -> None:
    """Write the resolved settings (atomically), e.g. beside an artifact they produced."""
    write_text_atomic(path, settings_yaml(settings))
