"""The JSON header of a safetensors file: tensor names, dtypes and shapes, read without the weights."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.textfile import json_file

MAX_HEADER = 100 << 20  # safetensors' own limit on a header's size


def read_header(path: Path) -> dict[str, dict]:
    """{tensor name: {"dtype", "shape", "data_offsets"}}; HarnessError naming the file when it is no
    safetensors file or is shorter than its header says (a truncated copy)."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > min(size - 8, MAX_HEADER):
                raise ValueError("header length past the end of the file")
            header = json.loads(fh.read(n))
        if not isinstance(header, dict):
            raise TypeError("header is not a JSON object")
        tensors = {k: t for k, t in header.items() if k != "__metadata__"}
        end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise HarnessError(f"weights file {str(path)!r} is not a valid safetensors file ({exc})") from None
    if 8 + n + end > size:
        raise HarnessError(f"weights file {str(path)!r} is truncated: {size} bytes, its header needs {8 + n + end}")
    return tensors


def weight_files(model_dir: Path) -> list[Path]:
    """A model folder's safetensors files: the shards its index names, else every *.safetensors; HarnessError
    naming what is missing (a shard the index names, any safetensors weights)."""
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json_file(index, "weights index").get("weight_map", {}).values()))
        missing = [s for s in shards if not (model_dir / s).is_file()]
        if not shards or missing:
            raise HarnessError(f"model folder {str(model_dir)!r}: {index.name} names missing shard(s): {', '.join(missing) or 'none listed'}")
        return [model_dir / s for s in shards]
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        other = sorted(p.name for p in model_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".gguf"))
        raise HarnessError(
            f"model folder {str(model_dir)!r} has no safetensors weights"
            + (f" (found {', '.join(other)}; convert them with save_pretrained(safe_serialization=True))" if other else "")
        )
    return files


def linear_modules(model_dir: Path) -> list[str]:
    """Names of the model's modules with a 2-D weight (the layers LoRA can adapt), from the headers alone."""
    shapes = tensor_shapes(weight_files(model_dir))
    return sorted(name.removesuffix(".weight") for name, shape in shapes.items() if name.endswith(".weight") and len(shape) == 2)


def tensor_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape over a model's weight files (one file or the shards)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        for name, tensor in read_header(path).items():
            shapes[name] = tuple(int(d) for d in tensor.get("shape", ()))
    return shapes
