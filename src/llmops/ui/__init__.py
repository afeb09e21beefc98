"""The web UI: Gradio Blocks mounted in the gateway app at /ui (spec 1.3, 8)."""
