"""The prompt/answer split and the loss mask on a LLaMA-2-style SentencePiece tokenizer.

LLaMA-2 and SeaLLM, the models SDRRL was run on, tokenize with SentencePiece: a word piece carries
its leading space ("▁Hello") and a text tokenized on its own gets a dummy-prefix space. A loss mask
built by tokenizing prompt and answer separately can then differ from the tokens the model sees.
The tokenizer here is trained offline with the `sentencepiece` package and loaded as a Llama
tokenizer with LLaMA-2's chat template (from meta-llama/Llama-2-7b-chat-hf's tokenizer_config).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.encoding import IGNORE_INDEX, chat_segments, encode_chat

LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
# The same turns with the answer glued to the prompt: the seam where a separately tokenized answer
# gains a "▁" piece the model never sees in context.
GLUED_TEMPLATE = LLAMA2_CHAT_TEMPLATE.replace("{{ ' '  + content.strip()", "{{ content.strip()")

CORPUS = [
    "The cat sleeps on the warm sofa today.", "Hello, how are you?", "Translate this sentence into Czech.",
    "Kočka dnes spí na teplé pohovce.", "A dog runs to the house.", "Give three tips for staying healthy.",
]


def _tokenizer(folder: Path, legacy: bool, template: str):
    import sentencepiece as spm  # a test dependency (pyproject.toml)
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 40), model_prefix=str(folder / "sp"), vocab_size=400, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        add_dummy_prefix=True, minloglevel=2,
    )
    (folder / "sp.model").rename(folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "legacy": legacy, "chat_template": template,
    }))
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module", params=[True, False], ids=["legacy", "non-legacy"])
def llama2_tokenizer(request, tmp_path_factory):
    return _tokenizer(tmp_path_factory.mktemp("sp"), request.param, LLAMA2_CHAT_TEMPLATE)


CHAT = [{"role": "user", "content": "Translate this sentence into Czech."},
        {"role": "assistant", "content": "Kočka dnes spí na teplé pohovce."}]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_llama2_mask_trains_exactly_the_answer_and_its_eos(llama2_tokenizer):
    tok = llama2_tokenizer
    prompt = tok.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(CHAT, tokenize=False)
    assert prompt.startswith("<s>[INST] ") and full.endswith(" </s>")
    enc = encode_chat(tok, CHAT, max_seq_len=512)
    assert enc["input_ids"] == _ids(tok, full)  # the tokens the model sees, not a concatenation of pieces
    prompt_ids = _ids(tok, prompt)
    assert enc["input_ids"][: len(prompt_ids)] == prompt_ids  # inference sees the same prompt tokens
    trained = [i for i, label in enumerate(enc["labels"]) if label != IGNORE_INDEX]
    assert trained == list(range(len(prompt_ids), len(enc["input_ids"])))  # the answer, contiguous, to the end
    assert enc["labels"][-1] == tok.eos_token_id  # the model learns to stop
    assert tok.decode([enc["input_ids"][i] for i in trained], skip_special_tokens=True).strip() == CHAT[1]["content"]


def test_multi_turn_llama2_trains_both_answers_only(llama2_tokenizer):
    tok = llama2_tokenizer
    chat = CHAT + [{"role": "user", "content": "Hello, how are you?"}, {"role": "assistant", "content": "A dog runs."}]
    enc = encode_chat(tok, chat, max_seq_len=512)
    assert enc["input_ids"] == _ids(tok, tok.apply_chat_template(chat, tokenize=False))
    trained_text = tok.decode([t for t in enc["labels"] if t != IGNORE_INDEX], skip_special_tokens=False)
    assert "[INST]" not in trained_text and "Hello, how" not in trained_text
    assert trained_text.count("</s>") == 2 and "Kočka" in trained_text and "dog" in trained_text


def test_glued_answer_seam_is_masked_as_the_model_sees_it(tmp_path):
    """Separately tokenized, the answer would start with a dummy-prefix '▁' piece that the
    in-context tokens do not have; the mask must follow the in-context tokens."""
    tok = _tokenizer(tmp_path / "glued", legacy=True, template=GLUED_TEMPLATE)
    full = tok.apply_chat_template(CHAT, tokenize=False)
    answer_alone = _ids(tok, CHAT[1]["content"] + " </s>")
    assert tok.convert_ids_to_tokens(answer_alone)[0].startswith("▁")  # the hazard is real here
    enc = encode_chat(tok, CHAT, max_seq_len=512)
    assert enc["input_ids"] == _ids(tok, full)
    assert enc["input_ids"][-len(answer_alone):] != answer_alone  # in context the seam tokenizes otherwise
    segments = chat_segments(tok, CHAT)
    answer_start = len(segments[0][0])
    offsets = tok(full, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for label, (start, _) in zip(enc["labels"], offsets):
        assert (label != IGNORE_INDEX) == (start >= answer_start)
