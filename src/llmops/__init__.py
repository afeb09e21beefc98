"""llmops: a closed-loop LLM system (data → LLaMA-Factory training → gateway and arena → DPO → rollout)."""

__version__ = "0.1.0"
