"""A tiny randomly initialised COMET checkpoint (regression metric over a 2-layer XLM-R), built
offline inside the COMET venv: `<comet python> tests/tiny_comet.py OUT_DIR`. Its scores mean
nothing; it exercises the real subprocess, model loading and batching."""

from __future__ import annotations

import sys
from pathlib import Path

TEXT = ["Scientists announced the discovery of a new frog species.", "Vědci oznámili objev nového druhu žáby.",
        "科学者たちは新種のカエルの発見を発表した。", "The museum is open every day except Tuesday."]


def build(out: Path) -> Path:
    import pytorch_lightning as pl
    import torch
    import yaml
    from comet.models import RegressionMetric
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    torch.manual_seed(0)
    enc_dir = out / "encoder"
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    fast.save_pretrained(enc_dir)
    XLMRobertaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=130, pad_token_id=1).save_pretrained(enc_dir)
    hparams = {"pretrained_model": str(enc_dir), "encoder_model": "XLM-RoBERTa", "hidden_sizes": [16],
               "layer": "mix", "pool": "avg", "dropout": 0.0, "load_pretrained_weights": False}
    model = RegressionMetric(**hparams)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    saved = {k: v for k, v in hparams.items() if k != "load_pretrained_weights"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": saved,
                "pytorch-lightning_version": pl.__version__}, out / "checkpoints" / "model.ckpt")
    (out / "hparams.yaml").write_text(yaml.safe_dump({"class_identifier": "regression_metric", **saved}))
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
