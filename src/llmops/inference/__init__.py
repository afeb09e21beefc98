"""Inference: the embedded engine (continuous batching, per-row LoRA, sampling, KV cache) and the upstream backend."""
