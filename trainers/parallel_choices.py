"""What the parallel-data settings may name (trainers.config.ParallelConfig): the built-in and the
default sources, the record formats and directions, and the parser of `parallel_formats`.

Kept apart from trainers.parallel (which builds the records and imports the config) so that the
config can check its values without importing the module that uses them.
"""

from __future__ import annotations

from harness.core.errors import HarnessError, shown
from harness.core.rules import DECIMAL_FLOAT
from trainers.codeswitch import DATA_DIR

BUILTIN_PARALLEL = {"opus-smoke": DATA_DIR / "opus_smoke"}
OPUS_100 = "Helsinki-NLP/opus-100"
PARALLEL_FORMATS = ("translation", "partial", "completion")
PARALLEL_DIRECTIONS = ("src-xx", "xx-src", "both")


def parse_formats(spec: str) -> dict[str, float]:
    """'partial:0.5,completion:0.5' -> shares per format (normalised to sum to 1)."""
    shares: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, share = part.partition(":")
        if name not in PARALLEL_FORMATS:
            raise HarnessError(f"unknown parallel format {shown(name)} in parallel_formats={shown(spec)}; valid: {', '.join(PARALLEL_FORMATS)}")
        if name in shares:  # the later share would silently replace the first
            raise HarnessError(f"parallel_formats={shown(spec)} gives {name!r} twice; give each format once")
        if share and not DECIMAL_FLOAT.match(share):  # nan and inf too: they make every count undefined
            raise HarnessError(f"parallel_formats={shown(spec)}: share of {name!r} is {shown(share)}; expected a number >= 0")
        shares[name] = float(share) if share else 1.0
        if shares[name] < 0:
            raise HarnessError(f"parallel_formats={shown(spec)}: share of {name!r} is negative")
    total = sum(shares.values())
    if total <= 0:
        raise HarnessError(f"parallel_formats={spec!r} gives no format a share; e.g. translation:1 or partial:0.5,completion:0.5")
    return {name: share / total for name, share in shares.items()}
