"""The CLI's command groups: each is a thin layer over library functions."""
