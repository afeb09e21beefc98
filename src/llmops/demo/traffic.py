"""Simulated users talking to the real HTTP gateway: arena battles with votes, and chats with thumbs.

Requests run concurrently (bounded), so the gateway's continuous batcher decodes them together. Each chat
user has its own id, so the router's sticky split sends about the rollout's share of users to the
candidate.
"""

import asyncio
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from rich.progress import Progress

from llmops.demo.simulated_users import SimulatedUsers
from llmops.inference.types import Sampling
from llmops.votes import Vote


@dataclass(frozen=True)
class TrafficReport:
    requests: int
    errors: int
    by_model: dict[str, int]


def _sampling_body(sampling: Sampling) -> dict[str, Any]:
    return {"max_tokens": sampling.max_tokens, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": sampling.top_k, "repetition_penalty": sampling.repetition_penalty}


async def _battle(client: httpx.AsyncClient, prompt: str, user: str, users: SimulatedUsers,
                  sampling: Sampling) -> Vote:
    response = await client.post("/v1/arena/battles", json={"prompt": prompt, "user": user,
                                                             **_sampling_body(sampling)})
    response.raise_for_status()
    battle = response.json()
    choice = users.vote(battle["response_a"], battle["response_b"])
    voted = await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": choice.value})
    voted.raise_for_status()
    return choice


async def _arena(url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling,
                 concurrency: int, progress: Progress | None) -> Counter[str]:
    limit = asyncio.Semaphore(concurrency)
    votes: Counter[str] = Counter()
    task = progress.add_task("arena battles", total=len(prompts)) if progress else None

    async def one(client: httpx.AsyncClient, index: int, prompt: str) -> None:
        async with limit:
            votes[(await _battle(client, prompt, f"arena-user-{index % 97}", users, sampling)).value] += 1
        if progress is not None and task is not None:
            progress.advance(task)

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await asyncio.gather(*(one(client, i, p) for i, p in enumerate(prompts)))
    return votes


def run_arena(url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling,
              concurrency: int = 16, progress: Progress | None = None) -> Counter[str]:
    """One battle per prompt (two sampled answers), voted by the simulated users; the count of each vote."""
    return asyncio.run(_arena(url, prompts, users, sampling, concurrency, progress))


async def _chat(client: httpx.AsyncClient, prompt: str, user: str, users: SimulatedUsers,
                sampling: Sampling) -> tuple[str, bool]:
    body = {"model": "production", "user": user, "messages": [{"role": "user", "content": prompt}],
            **_sampling_body(sampling)}
    response = await client.post("/v1/chat/completions", json=body)
    if response.status_code != 200:
        return "error", False
    data = response.json()
    score = users.thumbs(data["choices"][0]["message"]["content"])
    feedback = await client.post("/v1/feedback", json={"completion_id": data["id"], "score": score, "user": user})
    feedback.raise_for_status()
    return str(response.headers.get("X-LLMOps-Model", data.get("model", ""))), True


async def _traffic(url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling, count: int,
                   first_user: int, concurrency: int) -> TrafficReport:
    limit = asyncio.Semaphore(concurrency)
    results: list[tuple[str, bool]] = []

    async def one(client: httpx.AsyncClient, number: int, prompt: str) -> None:
        async with limit:
            results.append(await _chat(client, prompt, f"user-{number}", users, sampling))

    chosen = list(itertools.islice(itertools.cycle(prompts), first_user, first_user + count))
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await asyncio.gather(*(one(client, first_user + i, p) for i, p in enumerate(chosen)))
    by_model = Counter(model for model, ok in results if ok)
    return TrafficReport(len(results), sum(1 for _, ok in results if not ok), dict(by_model))


def send_traffic(url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling, count: int,
                 first_user: int = 0, concurrency: int = 8) -> TrafficReport:
    """`count` chats to `production` from new users (ids from `first_user` on), each answer thumbed up or down."""
    return asyncio.run(_traffic(url, prompts, users, sampling, count, first_user, concurrency))
