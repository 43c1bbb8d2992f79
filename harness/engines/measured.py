"""The route table `harness selftest` measured on this machine, kept in the user's cache.

One JSON file (default <SDRRL_HOME>/selftest/routes.json, or $SDRRL_ROUTES): per request type the
fastest engine and adapter serving that passed every check, and the engines that failed one. It
holds for the machine it was measured on (CPU, or the GPU's name) only; `--engine auto` reads it
(harness.engines.routing) and falls back to the design default when there is none for this machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.core.models import cache_root
from harness.core.runstore import write_json
from harness.engines.base import REQUEST_TYPES, on_gpu


@dataclass(frozen=True)
class MeasuredRoute:
    engine: str
    serving: str  # how an adapter reaches it: "merged" | "lora"
    items_per_s: float  # the selftest's figure on its model, base weights


@dataclass(frozen=True)
class MeasuredRoutes:
    machine: str  # machine_id() where it was measured
    model: str  # the model the selftest ran (its folder name)
    measured_at: str  # UTC, ISO 8601
    routes: dict[str, MeasuredRoute] = field(default_factory=dict)  # request type -> route
    failed: tuple[str, ...] = ()  # engines that failed a check: auto never routes to them

    def to_json(self) -> dict:
        return {**asdict(self), "failed": list(self.failed)}


def routes_file() -> Path:
    return Path(os.environ.get("SDRRL_ROUTES") or cache_root() / "selftest" / "routes.json")


def machine_id() -> str:
    """"cpu", or "gpu:<device name>": a table measured on another kind of machine does not hold here."""
    if not on_gpu():
        return "cpu"
    import torch

    return f"gpu:{torch.cuda.get_device_name(0)}"


def read_routes(path: Path | None = None) -> MeasuredRoutes | None:
    """This machine's measured table; None when there is none, it is another machine's, or it is unreadable
    (`harness doctor` says which)."""
    table = read_any_routes(path)
    return table if table is not None and table.machine == machine_id() else None


def read_any_routes(path: Path | None = None) -> MeasuredRoutes | None:
    path = path or routes_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        routes = {kind: MeasuredRoute(str(r["engine"]), str(r["serving"]), float(r["items_per_s"]))
                  for kind, r in raw["routes"].items() if kind in REQUEST_TYPES}
        return MeasuredRoutes(str(raw["machine"]), str(raw["model"]), str(raw["measured_at"]), routes,
                              tuple(str(e) for e in raw.get("failed", [])))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_routes(table: MeasuredRoutes, path: Path | None = None) -> Path:
    path = path or routes_file()
    write_json(path, table.to_json())
    return path
