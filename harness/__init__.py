"""sdrrl-harness: an evaluation-first benchmark harness with pluggable trainers."""

__version__ = "0.1.0"
