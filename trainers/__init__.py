"""Trainers: one file per trainer (sdrrl, translate_sft, english_sft, base) and the pieces they share.

Shared pieces: `config` (the settings, one dataclass per concern), `lora` (the LoRA training loop,
with `encoding`, `sampler`, `lora_model` and `checkpoint`), `instructions` and `parallel` (loading
instruction and parallel data; `parallel_choices`: what the parallel settings may name), `sources`
(what the translating trainers share), `translators` (pluggable machine translation with a content
cache; the interface in `translator_base`), `codeswitch` and `lexicons` (MUSE lexicons, word-level
code-switching).
"""
