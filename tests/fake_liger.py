"""A stand-in for liger-kernel 0.8.5 on a machine without Triton or a GPU: the same module path, the same
`apply_liger_kernel_to_llama` signature and effects (classes replaced in the modeling module, norms' and
MLPs' forwards bound per instance, the model's forward replaced by Liger's `lce_forward`), with torch
arithmetic where Liger launches Triton kernels. `lce_forward` and `liger_for_causal_lm_loss` transcribe
liger_kernel/transformers/model/llama.py and model/loss_utils.py of 0.8.5: the argument handling
(logits_to_keep, shift_labels, num_items_in_batch, skip_logits, the kwargs passed on to the decoder) is
Liger's own, which is what trainers.lora_model.forward_sum relies on.

`install(monkeypatch)` puts it in sys.modules and returns the counts of patched calls.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections import Counter
from types import MethodType

import torch
import torch.nn.functional as F

calls: Counter = Counter()


class FakeLigerRMSNorm(torch.nn.Module):
    def forward(self, hidden_states):
        calls["rms_norm"] += 1
        dtype = hidden_states.dtype
        x = hidden_states.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


class FakeLigerSwiGLUMLP(torch.nn.Module):
    def forward(self, x):
        calls["swiglu"] += 1
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def fake_rope(*args, **kwargs):
    raise AssertionError("rope must not be patched")


def liger_for_causal_lm_loss(hidden_states, lm_head_weight, labels, hidden_size, num_items_in_batch=None,
                             ignore_index=-100, shift_labels=None, **kwargs):
    calls["fused_loss"] += 1
    if shift_labels is None:
        labels = F.pad(labels, (0, 1), value=ignore_index)
        shift_labels = labels[..., 1:].contiguous()
    hidden_states = hidden_states.view(-1, hidden_size)
    shift_labels = shift_labels.view(-1)
    reduction = "sum" if num_items_in_batch is not None else "mean"
    logits = (hidden_states @ lm_head_weight.t()).float()  # Liger: in chunks, accumulated in fp32
    loss = F.cross_entropy(logits, shift_labels, ignore_index=ignore_index, reduction=reduction)
    return loss / num_items_in_batch if reduction == "sum" else loss


def lce_forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                labels=None, use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                cache_position=None, logits_to_keep=0, skip_logits=None, **kwargs):
    outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                         output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                         return_dict=return_dict, cache_position=cache_position, **kwargs)
    hidden_states = outputs[0]
    slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
    kept_hidden_states = hidden_states[:, slice_indices, :]
    shift_labels = kwargs.pop("shift_labels", None)
    logits = loss = None
    if skip_logits and labels is None and shift_labels is None:
        raise ValueError("skip_logits is True, but labels and shift_labels are None")
    if skip_logits is None:
        skip_logits = self.training and (labels is not None or shift_labels is not None)
    if skip_logits:
        loss = liger_for_causal_lm_loss(kept_hidden_states, self.lm_head.weight, labels, self.config.hidden_size,
                                        shift_labels=shift_labels, **kwargs)
    else:
        logits = self.lm_head(kept_hidden_states)
    return types.SimpleNamespace(loss=loss, logits=logits)


def _bind(module, name, fn):
    module.__dict__[name] = fn.__get__(module, module.__class__)


def apply_liger_kernel_to_llama(rope: bool = True, cross_entropy: bool = False, fused_linear_cross_entropy: bool = True,
                                rms_norm: bool = True, swiglu: bool = True, model=None) -> None:
    from transformers.models.llama import modeling_llama

    assert not (cross_entropy and fused_linear_cross_entropy)
    if rope:
        modeling_llama.apply_rotary_pos_emb = fake_rope
    if rms_norm:
        modeling_llama.LlamaRMSNorm = FakeLigerRMSNorm
    if swiglu:
        modeling_llama.LlamaMLP = FakeLigerSwiGLUMLP
    if fused_linear_cross_entropy:
        if model is not None:
            model.forward = MethodType(lce_forward, model)
        else:
            modeling_llama.LlamaForCausalLM.forward = lce_forward
    if model is not None:
        base = getattr(model, model.base_model_prefix, model)
        norms = [base.norm] if rms_norm else []
        for layer in base.layers:
            if swiglu:
                _bind(layer.mlp, "forward", FakeLigerSwiGLUMLP.forward)
            if rms_norm:
                norms += [layer.input_layernorm, layer.post_attention_layernorm]
        for norm in norms:
            _bind(norm, "forward", FakeLigerRMSNorm.forward)


def install(monkeypatch) -> Counter:
    """liger_kernel, liger_kernel.transformers and its monkey_patch module, as the fakes above."""
    names = ("liger_kernel", "liger_kernel.transformers", "liger_kernel.transformers.monkey_patch")
    modules = {name: types.ModuleType(name) for name in names}
    for name, module in modules.items():
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, module)
    modules["liger_kernel.transformers.monkey_patch"].MODEL_TYPE_TO_APPLY_LIGER_FN = {"llama": apply_liger_kernel_to_llama}
    calls.clear()
    return calls
