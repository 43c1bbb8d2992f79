"""An adapter folder checked before any model loads: a PEFT LoRA adapter (config, safetensors
weights, a rank the engines serve) made for the base model it is applied to (the base its config
names, and the modules and shapes it adapts, read from both safetensors headers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.core.errors import HarnessError, shown
from harness.core.safetensors_header import read_header, tensor_shapes, weight_files
from harness.core.textfile import json_file
from harness.services.preflight import check_safetensors


def check_adapter(adapter: Path, max_rank: int) -> None:
    if adapter.exists() and not adapter.is_dir():
        raise HarnessError(f"--adapter {str(adapter)!r} is a file; expected a PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")
    if not adapter.is_dir():
        raise HarnessError(f"adapter folder {str(adapter)!r} does not exist")
    config = json_file(adapter / "adapter_config.json", "adapter config") if (adapter / "adapter_config.json").is_file() else None
    if config is None:
        raise HarnessError(f"adapter folder {str(adapter)!r} has no adapter_config.json; is it a PEFT adapter?")
    if not (adapter / "adapter_model.safetensors").is_file():
        raise HarnessError(f"adapter folder {str(adapter)!r} has no adapter_model.safetensors")
    check_safetensors(adapter / "adapter_model.safetensors")
    rank = config.get("r")
    if not isinstance(rank, int) or not 1 <= rank <= max_rank:
        raise HarnessError(f"adapter {str(adapter)!r} has LoRA rank {rank!r}; vLLM serves ranks 1 to {max_rank}")


_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>A|B)(?:\.[^.]+)?\.weight$")


def check_adapter_fits(adapter: Path, model_dir: Path, model: str) -> None:
    """The adapter was made for this base model: the base model its config names (when that can be
    told apart from this one) and, always, the modules it adapts with their shapes, read from the
    safetensors headers of both, so an adapter for another architecture fails before any load."""
    config = json_file(adapter / "adapter_config.json", "adapter config")
    named = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if isinstance(named, str) and named.strip() and not _same_base(named.strip(), Path(model_dir), model):
        raise HarnessError(
            f"adapter {str(adapter)!r} was made for base model {shown(named)} (its adapter_config.json "
            f"base_model_name_or_path); this model is {shown(model)}: give --model {shown(named)}, or an adapter of this model"
        )
    base = tensor_shapes(weight_files(Path(model_dir)))
    for key, tensor in read_header(adapter / "adapter_model.safetensors").items():
        found = _LORA_KEY.match(key)
        if not found:
            continue
        module = found["module"]
        weight = base.get(f"{module}.weight")
        if weight is None:
            raise HarnessError(
                f"adapter {str(adapter)!r} adapts module {shown(module)}, which model {shown(model)} does not have "
                "(an adapter for another architecture?)"
            )
        shape = tuple(int(d) for d in tensor.get("shape", ()))
        # lora_A is [rank, in features], lora_B is [out features, rank]; the base weight is [out, in]
        want, got = (weight[-1], shape[-1]) if found["part"] == "A" else (weight[0], shape[0] if shape else None)
        if len(weight) == 2 and got != want:
            raise HarnessError(
                f"adapter {str(adapter)!r} does not fit model {shown(model)}: {key} has shape {list(shape)}, "
                f"the model's {module}.weight has shape {list(weight)} (an adapter for another model size?)"
            )


def _same_base(named: str, model_dir: Path, model: str) -> bool:
    """Whether the base model an adapter names is this one, as far as names and folders tell."""
    if named == model:
        return True
    path = Path(named).expanduser()
    if path.is_dir():
        return path.resolve() == model_dir.resolve() or _config_text(path) == _config_text(model_dir)
    if named.startswith(("/", ".", "~")):
        return True  # a folder gone since (a run folder moved elsewhere): the module shapes decide
    # A hub id: this model is that repository's snapshot, or its config says it came from there.
    repo_folder = "models--" + named.replace("/", "--")
    config = json_file(model_dir / "config.json", "model config")
    from_config = config.get("_name_or_path") if isinstance(config, dict) else None
    return repo_folder in model_dir.parts or from_config == named


def _config_text(model_dir: Path) -> str | None:
    try:
        return json.dumps(json.loads((model_dir / "config.json").read_text(encoding="utf-8")), sort_keys=True)
    except (OSError, ValueError):
        return None
