"""Trainers: one file per trainer (sdrrl, translate_sft, english_sft, base) and the pieces they share.

Shared pieces: `lora` (the LoRA training loop), `translators` (pluggable machine translation with a
content cache), `codeswitch` (MUSE lexicons, word-level code-switching) and `sources` (loading
instruction and parallel data, building translated pairs).
"""
