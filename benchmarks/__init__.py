"""VidSage benchmarks (see benchmarks/__main__.py)."""
