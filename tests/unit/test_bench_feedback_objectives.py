import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from llmops.loop.evaluate import Comparison, summarize

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "feedback_objectives.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feedback_objectives", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_table_shows_share_of_signals_and_interval_side_by_side() -> None:
    bench = _benchmark()
    evaluation = summarize("chat-v1.0", "chat-v1.1", "rubric", [Comparison(f"p{i}", float(i % 4 != 0), 0.0)
                                                                 for i in range(40)])
    rows = [bench.Row(500, "DPO on pairs", "97 pairs", 97, 1000, 88.6, evaluation),
            bench.Row(500, "KTO on every signal", "1454 (144 desirable, 1310 undesirable)", 972, 1000, 94.2,
                      evaluation),
            bench.Row(150, "KTO on pairs only", "74 (37 desirable, 37 undesirable)", 37, 0, 70.0, evaluation)]
    assert [r.share for r in rows] == [0.097, 0.972, 0.0]
    lines = bench.table(rows, "chat-v1.0").splitlines()
    assert lines[0].split("  ")[0] == "battles" and lines[0].endswith("win rate vs chat-v1.0 [95% CI]")
    assert "97 / 1000 (9.7%)" in lines[1] and "972 / 1000 (97.2%)" in lines[2] and "37 / 0 (0.0%)" in lines[3]
    assert all(line.endswith(f"0.875 [{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}]") for line in lines[1:])
    column = lines[0].index("signals used")
    assert lines[1].index("97 / 1000") == lines[2].index("972 / 1000") == lines[3].index("37 / 0") == column
