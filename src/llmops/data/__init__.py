"""Data: corpus, Self-Instruct, preferences, dataset registry and formats. Knows no consumer and no demo."""
