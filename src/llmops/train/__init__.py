"""Training: LLaMA-Factory configs, runs and the CPT → SFT → DPO pipeline."""
