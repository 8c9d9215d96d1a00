"""Tokenizers built on the spot, for the `random` and `tiny` weight modes (nothing can be downloaded).

A model's real tokenizer lives in its hub repo; without it, we train a small one of the same kind
(byte-level BPE for RoBERTa/CLAP, Unigram for T5, WordPiece for BERT) on a fixed caption corpus, in a few
milliseconds, and wrap it in the transformers class the pipeline expects. It splits captions into
sub-word pieces much as the real one does, so sequence lengths — and the text encoder's work — are of the
right order; padding to `model_max_length` (the real one in `random` mode) is exactly the real model's.
The *model's* vocabulary size comes from its config, not from this tokenizer, so parameter counts are
the real ones; ids from these small vocabularies are always valid rows of the real embedding.
"""

from __future__ import annotations

import functools
import json

# Caption-like sentences (AudioCaps/Clotho style, written for this file) the tokenizers are trained on.
CORPUS = (
    "A dog barks repeatedly while cars pass by on a wet road",
    "Water running out of a faucet, some hitting a sink bottom, and some water filling a cup",
    "Birds chirp in the distance as wind blows through the trees",
    "A man speaks, then a crowd cheers and applauds loudly",
    "Techno music with a strong, upbeat tempo and high melodic riffs",
    "A train horn blows and railroad tracks clack as it passes",
    "Rain falls on a tin roof with thunder rumbling in the background",
    "A woman laughs and a baby cries over the sound of a television",
    "An engine idles, then revs up and accelerates into the distance",
    "Footsteps on gravel followed by a door creaking open and slamming shut",
    "A cat meows twice while dishes clatter in a kitchen sink",
    "Ocean waves crash against rocks as seagulls call overhead",
    "Someone types on a keyboard and clicks a computer mouse",
    "A helicopter flies overhead, its rotor blades thumping",
    "Low quality, noisy, distorted recording with static hiss",
    "A piano plays a slow, sad melody accompanied by soft strings",
    "An electric guitar riff with heavy drums and a deep bass line",
    "People talk quietly in a busy restaurant as cutlery clinks on plates",
    "A clock ticks steadily and a bell rings three times",
    "Fire crackles and wood pops in a fireplace on a cold night",
    "A siren wails as an ambulance drives quickly down the street",
    "Insects buzz and frogs croak near a pond in the evening",
    "A drill whirs, then hammering echoes through an empty room",
    "Children shout and play at a playground while a whistle blows",
    "A jazz saxophone solo over a walking bass and brushed cymbals",
    "Paper rustles and pages turn as someone reads aloud",
    "A sheep bleats and a cow moos on a windy farm",
    "Glass shatters on a hard floor followed by a gasp",
    "The sound of Brazilian samba drums with waves gently crashing in the background",
    "Orchestral music with dramatic strings, brass and timpani building to a crescendo",
)


@functools.cache
def _trained(kind: str, vocab_size: int) -> str:
    """Train a `tokenizers` model of `kind` on CORPUS; return its JSON (cached: training is deterministic)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],  # RoBERTa's ids 0..3
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=["<pad>", "</s>", "<unk>"],
            unk_token="<unk>",
            show_progress=False,
        )
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            show_progress=False,
        )
    else:
        raise ValueError(kind)
    # Every character of the printable ASCII range appears at least once, so no caption is all <unk>.
    tok.train_from_iterator([*CORPUS, " ".join(chr(c) for c in range(33, 127))], trainer)
    return tok.to_str()


def roberta_tokenizer(model_max_length: int):
    """RoBERTa-style byte-level BPE (CLAP's text branch): `<s> … </s>`, pad id 1."""
    from transformers import RobertaTokenizer

    model = json.loads(_trained("bpe", 600))["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=model_max_length)


def t5_tokenizer(model_max_length: int):
    """T5-style Unigram (T5, FLAN-T5): `… </s>`, pad id 0."""
    from transformers import T5Tokenizer

    vocab = [tuple(piece) for piece in json.loads(_trained("unigram", 400))["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, model_max_length=model_max_length, extra_ids=0)


def bert_tokenizer(model_max_length: int):
    """BERT-style WordPiece, lower-cased (the CLAP text branch of Make-An-Audio): `[CLS] … [SEP]`."""
    from transformers import BertTokenizer

    vocab = json.loads(_trained("wordpiece", 600))["model"]["vocab"]
    return BertTokenizer(vocab=vocab, model_max_length=model_max_length)


def count_truncated(tokenizers, prompts) -> int:
    """How many prompts at least one of `tokenizers` cuts short (longer than its `model_max_length`)."""
    truncated = set()
    for tok in tokenizers:
        ids = tok(list(prompts), truncation=False, verbose=False)["input_ids"]
        truncated |= {i for i, seq in enumerate(ids) if len(seq) > tok.model_max_length}
    return len(truncated)
