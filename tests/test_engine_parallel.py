"""Tensor and data parallelism reach lm-eval's vLLM model; bad values stop before any model loads."""

from __future__ import annotations

import pytest

from harness.engines import EngineSettings, check_parallel, get_engine
from harness.core.errors import HarnessError


def test_parallel_sizes_reach_vllm(tiny_llama):
    args = get_engine("vllm").model_args(tiny_llama, None, EngineSettings(tensor_parallel_size=2, data_parallel_size=4))
    assert args["tensor_parallel_size"] == 2 and args["data_parallel_size"] == 4
    plain = get_engine("vllm").model_args(tiny_llama, None, EngineSettings())
    assert "tensor_parallel_size" not in plain and "data_parallel_size" not in plain


def test_bad_parallel_sizes_are_one_line_errors():
    with pytest.raises(HarnessError, match="tensor-parallel-size 2 needs --engine vllm"):
        check_parallel("hf", 2, 1)
    with pytest.raises(HarnessError, match="data-parallel-size must be >= 1, got 0"):
        check_parallel("vllm", 1, 0)
    check_parallel("vllm", 2, 2)
