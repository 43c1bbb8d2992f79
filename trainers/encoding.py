"""Training records as token ids: the chat template, the loss on the assistant tokens only, and the
batch tensors the training loop (trainers.lora) feeds the model: padded rows, or one packed row.
"""

from __future__ import annotations

from harness.core.errors import HarnessError

IGNORE_INDEX = -100


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """Split the rendered conversation into (text, is_trained) pieces.

    Each assistant turn is trained from just after the generation prompt (the text a model sees
    when asked to answer, `<|im_start|>assistant\\n` for ChatML) through its end-of-turn marker, so
    the model learns to stop. Splitting exactly at the generation prompt makes the prompt tokens
    the same as at inference time.
    """
    if tokenizer.chat_template is None:
        raise HarnessError(f"tokenizer of {tokenizer.name_or_path!r} has no chat template; use an instruction-tuned model")
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
        full = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise HarnessError(
                f"the chat template of {tokenizer.name_or_path!r} does not render turns as prefixes of each other; "
                "cannot locate the assistant tokens"
            )
        segments.append((prompt[len(done) :], False))
        segments.append((full[len(prompt) :], True))
        done = full
    rest = _render(tokenizer, messages, add_generation_prompt=False)
    if rest.startswith(done) and len(rest) > len(done):
        segments.append((rest[len(done) :], False))
    return [(text, trained) for text, trained in segments if text]


def encode_chat(tokenizer, messages: list[dict], max_seq_len: int) -> dict | None:
    """input_ids and labels (IGNORE_INDEX outside assistant turns), cut to max_seq_len.

    The whole conversation is tokenized once, as the model sees it, and each token is trained when
    it starts inside an assistant segment (character offsets). Tokenizing the segments one by one
    would differ from that at their seams: a SentencePiece tokenizer (LLaMA-2, SeaLLM) prefixes a
    separately tokenized answer with a space piece of its own. Tokenizers without offsets fall back
    to segment by segment. None when nothing trainable is left after cutting.
    """
    segments = chat_segments(tokenizer, messages)
    if getattr(tokenizer, "is_fast", False):
        text = "".join(t for t, _ in segments)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans, at = [], 0
        for piece, trained in segments:
            if trained:
                spans.append((at, at + len(piece)))
            at += len(piece)
        input_ids = list(enc["input_ids"])
        labels = [tok if any(a <= start < b for a, b in spans) else IGNORE_INDEX
                  for tok, (start, _) in zip(input_ids, enc["offset_mapping"])]
    else:
        input_ids, labels = [], []
        for piece, trained in segments:
            ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
            input_ids.extend(ids)
            labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))
    input_ids, labels = input_ids[:max_seq_len], labels[:max_seq_len]
    # labels[0] can never be predicted (nothing before it), so it does not count.
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        return None
    return {"input_ids": input_ids, "labels": labels}

def collate(examples: list[dict], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def n_targets(example: dict) -> int:
    """Tokens the loss counts: labels after the causal shift."""
    return sum(1 for label in example["labels"][1:] if label != IGNORE_INDEX)


def collate_packed(examples: list[dict]):
    """One row without padding: the records joined, positions restarting at 0 in each (transformers reads
    the restarts as record boundaries and keeps attention inside a record: a block-diagonal mask with
    sdpa or eager attention, variable-length kernels with flash attention). A record's first token is
    never a target, as in a padded row: here the token before it belongs to another record."""
    import torch

    ids, positions, labels = [], [], []
    for e in examples:
        n = len(e["input_ids"])
        ids.extend(e["input_ids"])
        positions.extend(range(n))
        labels.extend([IGNORE_INDEX, *e["labels"][1:]])
    as_row = lambda values: torch.tensor([values], dtype=torch.long)  # noqa: E731
    return {"input_ids": as_row(ids), "position_ids": as_row(positions), "labels": as_row(labels)}
