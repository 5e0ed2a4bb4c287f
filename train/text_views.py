"""Text views for DeCLIP-style methods: an EDA-augmented caption and a BERT-style masked caption.

Both are loader views like the image views of train/augment.py: the loader calls them on the caption
string inside its per-sample seeded context (train/data.py `_seeded`: python, numpy and torch RNGs seeded
by (seed, position)), so a view is a pure function of (seed, position). That makes them independent of the
number of processes and loader workers, and resume needs no state of theirs.

- `text_eda` (Wei & Zou 2019, "EDA", as DeCLIP uses it): one operation per caption, chosen uniformly from
  synonym replacement (n=1, WordNet, stop words skipped), random swap (n=1) and random deletion (p=0.1);
  then tokenised like `text`.
- `text_mlm` (Devlin et al. 2019, BERT's masking, as DeCLIP's MLM): the tokenised caption with `mask_rate`
  of its word tokens chosen (start, end and padding never); of those 80% become the mask token, 10% a random
  token, 10% stay. Output: a (2, context) long tensor, row 0 the input ids, row 1 the labels (the original id
  where chosen, -100 elsewhere: `F.cross_entropy(ignore_index=-100)`).

The mask token reuses the start-of-text id (never a new id: the saved model keeps open_clip's vocabulary, so
its checkpoint stays a plain open_clip model). Start-of-text only ever occurs at position 0, so at any
other position it is unambiguous, and it exists in every open_clip tokenizer whatever its vocabulary size.
Random replacements are drawn below min(vocab, start id, end id): open_clip's text pooling takes the
argmax id as the end of the caption, so no random token may outrank the end token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tierclip.curate.errors import UserError

IGNORE = -100
# English stop words skipped by synonym replacement: EDA's list (itself NLTK's), written out so nothing is downloaded.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself it its
itself they them their theirs themselves what which who whom this that these those am is are was were be been being
have has had having do does did doing a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off over under again further then once
here there when where why how all any both each few more most other some such no nor not only own same so than too very
s t can will just don should now
""".split())
EDA_DELETE_P = 0.1


@dataclass(frozen=True)
class TextContext:
    """What a text view needs besides the caption: the run's tokenizer and the model's vocabulary size."""

    tokenizer: object
    vocab_size: int

    @property
    def sot_id(self) -> int:
        return int(_special_id(self.tokenizer, "sot_token_id"))

    @property
    def eot_id(self) -> int:
        return int(_special_id(self.tokenizer, "eot_token_id"))


def _special_id(tokenizer, name: str) -> int:
    value = getattr(tokenizer, name, None)
    if value is None:
        raise UserError(f"text views: tokenizer {type(tokenizer).__name__} has no {name}; DeCLIP's text views need "
                        "an open_clip tokenizer with start/end-of-text ids")
    return value


# --- EDA ---------------------------------------------------------------------------------------------------------

def _clean(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalpha())


def synonym_replacement(words: list[str], rng: random.Random) -> list[str]:
    """EDA's synonym replacement with n=1: a random non-stop word that has WordNet synonyms, every occurrence
    of it replaced by one random synonym. Unchanged when no word has any."""
    from tierclip.train.wordnet import synonyms

    candidates = sorted({_clean(w) for w in words if _clean(w) and _clean(w) not in STOP_WORDS})
    rng.shuffle(candidates)
    for candidate in candidates:
        options = synonyms(candidate)
        if options:
            chosen = rng.choice(options)
            return [chosen if _clean(w) == candidate else w for w in words]
    return list(words)


def random_swap(words: list[str], rng: random.Random) -> list[str]:
    """EDA's random swap with n=1: two random positions exchanged (EDA tries 3 times to draw two distinct ones)."""
    words = list(words)
    if len(words) < 2:
        return words
    first = rng.randrange(len(words))
    second = first
    for _ in range(3):
        second = rng.randrange(len(words))
        if second != first:
            break
    words[first], words[second] = words[second], words[first]
    return words


def random_deletion(words: list[str], rng: random.Random, p: float = EDA_DELETE_P) -> list[str]:
    """EDA's random deletion: each word dropped with probability p; never all of them (one random word stays)."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() > p]
    return kept or [words[rng.randrange(len(words))]]


EDA_OPERATIONS = (synonym_replacement, random_swap, random_deletion)


def eda(caption: str, rng: random.Random | None = None) -> str:
    """One EDA operation, chosen uniformly, applied to the caption's whitespace-separated words.

    Without `rng`: python's module-level RNG (the `random` module has the same methods), which the loader
    seeds per sample."""
    rng = rng or random
    operation = EDA_OPERATIONS[rng.randrange(len(EDA_OPERATIONS))]
    return " ".join(operation(caption.split(), rng))


@dataclass(frozen=True)
class EdaView:
    """caption -> token ids of its EDA augmentation (a class, not a closure: loader workers may pickle it)."""

    text: TextContext

    def __call__(self, caption: str):
        return self.text.tokenizer([eda(caption)])[0]


# --- MLM ---------------------------------------------------------------------------------------------------------

def mask_tokens(ids, rate: float, text: TextContext, generator=None):
    """BERT masking of one tokenised caption (context,) -> (2, context): masked input ids, labels (-100 = not chosen).

    Draws from torch's global RNG (seeded per sample by the loader) unless a `generator` is given."""
    import torch

    ids = ids.clone()
    sot, eot = text.sot_id, text.eot_id
    end = int((ids == eot).nonzero()[0]) if bool((ids == eot).any()) else len(ids)
    maskable = torch.zeros(len(ids), dtype=torch.bool)
    maskable[1:end] = True
    maskable &= (ids != sot) & (ids != eot)
    chosen = maskable & (torch.rand(len(ids), generator=generator) < rate)
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(len(ids), generator=generator)
    high = min(text.vocab_size, sot, eot)
    random_ids = torch.randint(0, high, (len(ids),), generator=generator)
    ids = torch.where(chosen & (roll < 0.8), torch.full_like(ids, sot), ids)
    ids = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, ids)
    return torch.stack([ids, labels])


def mask_rate_of(cfg) -> float:
    """The `text_mlm` mask rate of a `train.augment.ViewConfig` (the method's: DeCLIP's `--declip-mask-rate`)."""
    rate = getattr(cfg, "mask_rate", None)
    if rate is None:
        raise UserError("text view 'text_mlm' needs a mask rate (a ViewConfig from the method, Method.view_config)")
    return float(rate)


@dataclass(frozen=True)
class MlmView:
    """caption -> (2, context): masked token ids and MLM labels."""

    text: TextContext
    rate: float

    def __call__(self, caption: str):
        return mask_tokens(self.text.tokenizer([caption])[0], self.rate, self.text)


def eda_view(cfg, text: TextContext) -> EdaView:
    return EdaView(text)


def mlm_view(cfg, text: TextContext) -> MlmView:
    return MlmView(text, mask_rate_of(cfg))


TEXT_VIEWS = {"text_eda": eda_view, "text_mlm": mlm_view}


def blank_text_view(view: str, batch: int, context_length: int, cfg=None):
    """Zero token ids shaped like `view`'s output, for FLOP counting (train/flops.py).

    `text_mlm`: the mask rate (`mask_rate_of(cfg)`) of the positions between start and end carry a label, i.e. as many as a
    caption filling the whole context would have: an upper bound for shorter captions (the MLM head's cost).
    """
    import torch

    ids = torch.zeros((batch, context_length), dtype=torch.long)
    if view != "text_mlm":
        return ids
    labels = torch.full_like(ids, IGNORE)
    chosen = round(mask_rate_of(cfg) * max(0, context_length - 2))
    labels[:, 1:1 + chosen] = 0
    return torch.stack([ids, labels], dim=1)
