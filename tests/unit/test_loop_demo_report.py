from pathlib import Path

from llmops.demo.report import (
    LoopRound,
    Scenario,
    TimelinePoint,
    plot_dpo_accuracy,
    plot_losses,
    plot_rollout,
    plot_win_rate,
    rounds_tables,
    write_report,
)
from llmops.loop.evaluate import Comparison, summarize


def test_report_charts_and_markdown(tmp_path: Path) -> None:
    log = [{"current_steps": s, "loss": 1.0 / s, "accuracy": min(1.0, s / 10)} for s in range(1, 11)]
    evaluation = summarize("chat-v1.0", "chat-v1.1", "rubric",
                           [Comparison(f"p{i}", float(i % 3 != 0), 0.0) for i in range(60)])
    second = summarize("chat-v1.1", "chat-v1.2", "rubric",
                       [Comparison(f"p{i}", 1.0, float(i % 2 == 0)) for i in range(60)])
    rounds = [LoopRound(1, 500, 500, 113, 4, 383, evaluation, "promoted"),
              LoopRound(2, 250, 250, 101, 120, 20, second, "promoted")]
    broken = Scenario("Broken candidate", "chat-v1.2", "rolled back", [
        TimelinePoint(0, 0.05, 0.0, 0.0, None, "started"), TimelinePoint(5, 0.0, 0.25, 300.0, -0.2, "rolled_back")],
        [{"event": "rolled_back", "traffic": 0.0,
          "evidence": {"reason": "guardrail: error_rate 0.25 breaches limit 0.05",
                       "breaches": [{"metric": "error_rate", "value": 0.25, "limit": 0.05}],
                       "candidate": {"requests": 12, "error_rate": 0.25}}}])
    charts = {
        "losses": plot_losses({"sft": log, "dpo": log[:5]}, tmp_path / "losses.png"),
        "dpo_accuracy": plot_dpo_accuracy({"dpo → chat-v1.1": log, "dpo → chat-v1.2": log[:5]}, tmp_path / "acc.png"),
        "win_rate": plot_win_rate([evaluation, second], 0.5, tmp_path / "win.png"),
        "rollout_0": plot_rollout(broken, {"max_error_rate": 0.05, "max_latency_p99_ms": 2000}, tmp_path / "r.png"),
    }
    assert all(path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG" for path in charts.values())
    report = write_report(tmp_path / "report.md", [("DPO", "win rate 0.67", "12")], rounds, 0.5, [broken],
                          {key: path.name for key, path in charts.items()}, ["A note."])
    text = report.read_text()
    assert "| DPO | win rate 0.67 | 12 |" in text
    assert "| 1 | chat-v1.1 | chat-v1.0 | rubric | 0.833 |" in text and "passed | promoted |" in text
    assert "| 2 | chat-v1.2 | chat-v1.1 | rubric | 0.750 |" in text
    assert "| 1 | 500 | 500 | 113 | 22.6% | 4 | 383 | 0 |" in text
    assert "| 2 | 250 | 250 | 101 | 40.4% | 120 | 20 | 9 |" in text
    assert "### Broken candidate: rolled back" in text and "![rollout](r.png)" in text
    assert "| event | traffic | reason | requests | error_rate | latency_p99_ms | feedback_score | breaches |" in text
    assert ("| rolled_back | 0% | guardrail: error_rate 0.25 breaches limit 0.05 | 12 | 0.25 |  |  | error_rate |"
            in text)


def test_votes_table_heading_follows_the_objective() -> None:
    evaluation = summarize("chat-v1.0", "chat-v1.1", "rubric", [Comparison("p", 1.0, 0.0)])
    dpo = LoopRound(1, 500, 500, 113, 4, 383, evaluation, "promoted")
    kto = LoopRound(2, 250, 250, 480, 5, 20, evaluation, "promoted", "kto")
    assert "| round | battles | votes | pairs used |" in rounds_tables([dpo], 0.5)[2]
    assert "| round | battles | votes | KTO examples used |" in rounds_tables([kto], 0.5)[2]
    mixed = rounds_tables([dpo, kto], 0.5)[2]
    assert "examples used (DPO: pairs, KTO: KTO examples)" in mixed
    assert "| 1 | 500 | 500 | 113 (dpo) |" in mixed and "| 2 | 250 | 250 | 480 (kto) |" in mixed


def test_kto_share_counts_votes_not_examples() -> None:
    """A KTO vote gives two examples: the share used is of votes (never over 100%), both_bad votes are used."""
    evaluation = summarize("chat-v1.0", "chat-v1.1", "rubric", [Comparison("p", 1.0, 0.0)])
    kto = LoopRound(2, 250, 250, 480, 5, 20, evaluation, "promoted", "kto", used=240)
    assert kto.share_used == 0.96 and kto.other_dropped == 5
    assert "| 2 | 250 | 250 | 480 | 96.0% | 5 | 20 | 5 |" in rounds_tables([kto], 0.5)[2]
