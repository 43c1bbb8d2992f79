"""`harness selftest` (harness.services.selftest) and the measured route table `--engine auto` reads.

The real selftest runs on the tiny model, vLLM (CPU) and HF, each with the adapter merged and served
as a LoRA; the faults it guards are made on purpose: the adapter dropped on the way to the engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.engines.routing as routing
from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.engines import route
from harness.engines.measured import MeasuredRoute, MeasuredRoutes, read_routes, routes_file, write_routes
from reports.compute import served_by
from reports.load import Run, TaskResult


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """A private user cache (the selftest adapter, merged copies) and route table."""
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SDRRL_ROUTES", str(tmp_path / "home" / "routes.json"))
    monkeypatch.setattr(routing, "hardware", lambda: "cpu")
    return tmp_path / "home"


def _table(routes: dict[str, tuple[str, str]], failed=(), machine="cpu") -> MeasuredRoutes:
    return MeasuredRoutes(machine, "tiny", "2026-01-01T00:00:00+00:00",
                          {k: MeasuredRoute(e, s, 1.0) for k, (e, s) in routes.items()}, tuple(failed))


# --------------------------------------------------------------------------- auto and the table (fast)


def test_auto_takes_the_measured_route_and_says_so(home):
    assert route("auto", "generation", True) == routing.Route("vllm", "merged", "default")  # no table yet
    write_routes(_table({"generation": ("hf", "lora"), "loglikelihood": ("vllm", "merged")}))
    assert route("auto", "generation", True) == routing.Route("hf", "lora", "measured")
    assert route("auto", "comprehension", False) == routing.Route("vllm", "none", "measured")
    assert route("auto", "generation", True, "merged").serving == "merged"  # a forced serving still wins
    assert route("hf", "generation", True).basis == "named"
    assert routing.Route("hf", "lora", "measured").label == "hf+lora (measured here)"
    assert routing.Route("vllm", "none", "default").label == "vllm (design default)"


def test_another_machines_table_does_not_hold_here(home):
    write_routes(_table({"generation": ("hf", "lora")}, machine="gpu:NVIDIA H200"))
    assert read_routes() is None
    assert route("auto", "generation", False).basis == "default"
    routes_file().write_text("{not json", encoding="utf-8")  # a damaged table is no table
    assert route("auto", "generation", False) == routing.Route("vllm", "none", "default")


def test_auto_never_routes_to_a_failed_engine(home):
    # vLLM failed the selftest: no measured generation route, and the design default (vllm) is passed over
    write_routes(_table({"loglikelihood": ("hf", "merged")}, failed=["vllm"]))
    assert route("auto", "generation", False) == routing.Route("hf", "none", "default")
    write_routes(_table({}, failed=["hf", "vllm"]))
    with pytest.raises(HarnessError, match="no engine left for generation requests: harness selftest failed hf, vllm"):
        route("auto", "generation", False)


def test_the_report_says_whether_a_route_was_measured(tmp_path):
    def result(task: str, kind: str, **scores) -> TaskResult:
        return TaskResult(task, "base", "f", "en", kind, "acc", {}, 1, {}, {}, {"kind": kind, **scores}, tmp_path)

    run = Run("r", tmp_path, {}, {}, {"base": {
        "a": result("a", "comprehension", engine="hf", engine_requested="auto", route_basis="measured"),
        "b": result("b", "generation", engine="vllm", engine_requested="auto"),  # written before route_basis
        "c": result("c", "generation", engine="hf", engine_requested="hf", route_basis="named"),
    }})
    assert served_by(run) == {"base": {"generation": ["hf", "vllm (design default)"], "multiple choice": ["hf (measured here)"]}}


def test_selftest_refuses_a_bad_engine_name_before_loading_anything(capsys):
    assert main(["selftest", "--model", "/no/such/model", "--engine", "hf,tensorrt"]) == 2
    assert capsys.readouterr().err.strip() == "harness: error: unknown engine to test 'tensorrt'; valid: hf, vllm"


# --------------------------------------------------------------------------- the real selftest (slow)


@pytest.mark.slow
def test_selftest_passes_on_vllm_and_hf_and_auto_then_uses_its_table(tiny_llama, home, capsys):
    assert main(["selftest", "--model", str(tiny_llama)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    table = read_routes()
    assert table is not None and table.failed == () and table.model == tiny_llama.name
    assert set(table.routes) == {"loglikelihood", "generation"}
    for kind, task_kind in (("loglikelihood", "comprehension"), ("generation", "generation")):
        measured = table.routes[kind]
        assert measured.engine in ("vllm", "hf") and measured.serving in ("merged", "lora") and measured.items_per_s > 0
        assert route("auto", task_kind, True) == routing.Route(measured.engine, measured.serving, "measured")
        assert f"auto on this machine: {kind} -> {measured.engine}" in out
    for label in ("vllm", "vllm+merged", "vllm+lora", "hf", "hf+merged", "hf+lora"):  # each engine and serving ran
        assert f"selftest: {label}: loglikelihood " in captured.err, label
    assert (home / "selftest" / "adapters").is_dir()  # the adapter, built once, in the user's cache


@pytest.mark.slow
def test_an_adapter_dropped_on_the_way_fails_in_one_line_per_engine(tiny_llama, home, monkeypatch, capsys):
    """The faults: HF's `peft=` argument dropped, and vLLM's LoRA request dropped from every generate
    call (what lm-eval issue 2432 did). Each is one line, exit 1, and auto then avoids both engines."""
    from harness.engines.hf_engine import HFEngine
    from harness.engines.scoring_vllm import SharedPrefixVLLM

    real_args = HFEngine.model_args
    monkeypatch.setattr(HFEngine, "model_args", lambda self, *a: {k: v for k, v in real_args(self, *a).items() if k != "peft"})
    real_generate = SharedPrefixVLLM._model_generate

    def without_lora(self, *args, **kwargs):  # lm-eval's VLLM sends self.lora_request with each call
        kept, self.lora_request = self.lora_request, None
        try:
            return real_generate(self, *args, **kwargs)
        finally:
            self.lora_request = kept

    monkeypatch.setattr(SharedPrefixVLLM, "_model_generate", without_lora)
    assert main(["selftest", "--model", str(tiny_llama)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness: selftest:")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("harness: selftest: vllm: vllm+lora: the adapter was not applied (log-likelihoods within ")
    assert lines[1].startswith("harness: selftest: hf: hf+lora: the adapter was not applied (log-likelihoods within ")
    assert read_routes().failed == ("hf", "vllm")
    with pytest.raises(HarnessError, match="no engine left for loglikelihood requests"):
        route("auto", "comprehension", True)


def test_doctor_reads_the_engines_from_the_registry_and_says_to_run_the_selftest(home, monkeypatch, capsys):
    from harness.engines.vllm_engine import VLLMEngine

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(VLLMEngine, "missing", classmethod(lambda cls: "vLLM not installed -> bash scripts/install.sh, or --engine hf"))
    assert main(["doctor", "--engine", "hf"]) == 0  # not needed by this run: a warning
    out = capsys.readouterr().out
    assert "engine vllm " in out and "vLLM not installed" in out and "engine hf (this run)" in out
    assert "--engine auto takes the design default (not measured here)" in out and "harness selftest (once on new hardware" in out
    assert main(["doctor"]) == 1  # auto routes generation to vLLM on CPU: needed, so it fails
    assert "FAIL" in capsys.readouterr().out
    write_routes(_table({"loglikelihood": ("hf", "lora"), "generation": ("hf", "merged")}, failed=["vllm"]))
    assert main(["doctor"]) == 0  # the measured routes avoid the failed engine
    from harness.services.doctor import RunPlan, check_environment

    rows = {c.item: c for c in check_environment(RunPlan(suite=None, model=None))}
    assert rows["auto routes"].detail == ("measured here by harness selftest (2026-01-01T00:00:00+00:00, tiny): "
                                          "loglikelihood hf+lora, generation hf+merged")
    monkeypatch.setattr(VLLMEngine, "missing", classmethod(lambda cls: None))  # installed, but failed the selftest
    vllm_row = next(c for c in check_environment(RunPlan(suite=None, model=None)) if c.item.startswith("engine vllm"))
    assert vllm_row.status == "warn" and vllm_row.detail.startswith("failed harness selftest (2026-01-01")


def test_the_route_is_the_fastest_verified_engine_and_the_default_wins_a_near_tie():
    from harness.services.selftest import Served, fastest_routes

    def runs(engine: str, ll: float, gen: float, lora_gen: float) -> dict[str, Served]:
        return {"none": Served(engine, "none", items_per_s={"loglikelihood": ll, "generation": gen}),
                "merged": Served(engine, "merged", items_per_s={"loglikelihood": ll, "generation": gen}),
                "lora": Served(engine, "lora", items_per_s={"loglikelihood": ll / 2, "generation": lora_gen})}

    by_engine = {"vllm": runs("vllm", 10.0, 30.0, 40.0), "hf": runs("hf", 10.5, 5.0, 1.0)}
    default = {"loglikelihood": "vllm", "generation": "vllm"}
    routes = fastest_routes(by_engine, set(), default)
    assert (routes["loglikelihood"].engine, routes["loglikelihood"].serving) == ("vllm", "merged")  # 5% faster is noise
    assert (routes["generation"].engine, routes["generation"].serving) == ("vllm", "lora")
    by_engine["hf"] = runs("hf", 20.0, 5.0, 1.0)
    assert fastest_routes(by_engine, set(), default)["loglikelihood"].engine == "hf"  # 2x: measured wins
    assert fastest_routes(by_engine, {"hf"}, default)["loglikelihood"].engine == "vllm"  # never a failed engine
    assert fastest_routes(by_engine, {"hf", "vllm"}, default) == {}
