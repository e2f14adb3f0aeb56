"""A character-level tokenizer for the tiny model, built locally (no download).

Saved in the standard Hugging Face format (tokenizer.json + tokenizer_config.json), so the
checkpoint loads through ``AutoTokenizer.from_pretrained`` like any real one.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[EOS]", "[MASK]", "[UNK]")
CHARACTERS = string.digits + string.ascii_lowercase + " =+\n"


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + tuple(CHARACTERS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    core.decoder = decoders.Fuse()  # characters join without separators
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="[PAD]",
        eos_token="[EOS]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        clean_up_tokenization_spaces=False,
    )
