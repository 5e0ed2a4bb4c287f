"""DeCLIP's caption views: EDA (WordNet from Debian's wordnet-base, seeded) and BERT masking for the MLM loss."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from tierclip.curate.errors import UserError
from tierclip.train.text_views import (
    IGNORE,
    STOP_WORDS,
    TextContext,
    blank_text_view,
    eda,
    mask_tokens,
    random_deletion,
    random_swap,
    synonym_replacement,
)

CAPTION = "a photo of a red circle next to the big square"


def test_wordnet_base_is_installed_and_read_offline():
    """Fails (never skips) without Debian's wordnet-base: `apt-get install wordnet-base` (.ci/debian-packages.txt)."""
    from tierclip.train.wordnet import WORDNET_DIR, check_wordnet, synonyms

    assert check_wordnet() == WORDNET_DIR
    assert set(synonyms("photo")) == {"exposure", "photograph", "pic", "picture"}
    assert {"crimson", "scarlet", "ruby"} <= set(synonyms("red")) and "red" not in synonyms("red")
    assert synonyms("zzzq") == ()


def test_missing_wordnet_is_a_user_error_naming_the_package(tmp_path):
    from tierclip.train.wordnet import check_wordnet

    with pytest.raises(UserError, match=r"index.noun: missing.*apt-get install wordnet-base"):
        check_wordnet(tmp_path)


def test_synonym_replacement_replaces_one_non_stop_word_everywhere_with_a_wordnet_synonym():
    from tierclip.train.wordnet import synonyms

    words = "a photo of a photo".split()
    replaced = synonym_replacement(words, random.Random(0))
    assert replaced[0] == "a" and replaced[2:4] == ["of", "a"]               # stop words untouched
    assert replaced[1] == replaced[4] and replaced[1] in synonyms("photo")  # every occurrence, one synonym
    only_stop_words = "of the and a".split()
    assert synonym_replacement(only_stop_words, random.Random(0)) == only_stop_words
    assert {"a", "of", "the", "to"} <= STOP_WORDS and "photo" not in STOP_WORDS


def test_random_swap_exchanges_two_words_and_deletion_never_empties_a_caption():
    words = CAPTION.split()
    swapped = random_swap(words, random.Random(1))
    assert sorted(swapped) == sorted(words) and sum(a != b for a, b in zip(swapped, words, strict=True)) == 2
    assert random_swap(["one"], random.Random(0)) == ["one"]
    kept_counts = [len(random_deletion(words, random.Random(seed))) for seed in range(400)]
    assert min(kept_counts) >= 1 and max(kept_counts) <= len(words)
    # p = 0.1 per word: about 10% of the words go.
    assert sum(len(words) - k for k in kept_counts) / (400 * len(words)) == pytest.approx(0.1, abs=0.02)
    assert random_deletion(["x", "y"], random.Random(0), p=1.0) in (["x"], ["y"])
    for seed in range(20):
        assert all(w in words for w in random_deletion(words, random.Random(seed)))


def test_eda_picks_one_operation_uniformly_and_is_seeded():
    outcomes = Counter()
    words = CAPTION.split()
    for seed in range(300):
        out = eda(CAPTION, random.Random(seed)).split()
        assert out == eda(CAPTION, random.Random(seed)).split()          # the same seed, the same caption
        if sorted(out) == sorted(words) and out != words:
            outcomes["swap"] += 1
        elif len(out) < len(words):
            outcomes["delete"] += 1
        elif out != words:
            outcomes["synonym"] += 1
    # A third each (a deletion may drop nothing, so "delete" is a little under): uniform choice.
    assert all(70 <= outcomes[op] <= 130 for op in ("swap", "synonym")) and 60 <= outcomes["delete"] <= 130


def test_eda_view_uses_the_loaders_per_sample_seed(tmp_path):
    """Through PositionDataset: a position always gets the same EDA caption, other positions other ones."""
    import open_clip
    from tierclip.train.augment import make_view_transform
    from tierclip.train.data import PositionDataset, build_index

    from tests.train.helpers import color_pool

    pool = color_pool(tmp_path / "pool", shards=1, per_shard=4)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    view = make_view_transform("text_eda", 32, (0.5,) * 3, (0.5,) * 3, None, TextContext(tokenizer, 49408))
    dataset = PositionDataset(build_index(pool, None), {"text_eda": view}, tokenizer, seed=3)
    first = [dataset[p]["text_eda"] for p in range(12)]
    assert all(torch.equal(a, dataset[p]["text_eda"]) for p, a in enumerate(first))
    changed = sum(not torch.equal(dataset[p]["text_eda"], dataset[p]["text"]) for p in range(12))
    assert changed >= 6  # most captions change (a deletion of nothing leaves one as it was)
    again = PositionDataset(build_index(pool, None), {"text_eda": view}, tokenizer, seed=4)
    assert any(not torch.equal(first[p], again[p]["text_eda"]) for p in range(12))


def test_text_views_need_a_text_context():
    from tierclip.train.augment import make_view_transform

    with pytest.raises(UserError, match="text view 'text_mlm' needs the tokenizer"):
        make_view_transform("text_mlm", 32, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(UserError, match="text view 'text_mlm' needs a mask rate"):
        make_view_transform("text_mlm", 32, (0.5,) * 3, (0.5,) * 3, None, TextContext(Specials(), 49408))


class Specials:
    sot_token_id, eot_token_id = 49406, 49407


def test_mlm_masking_follows_bert_and_never_touches_start_end_or_padding():
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    context = TextContext(tokenizer, 49408)
    ids = tokenizer(["a photo of a red circle next to the big square and a small blue star"])[0]
    end = int((ids == context.eot_id).nonzero()[0])
    generator = torch.Generator().manual_seed(0)
    draws = [mask_tokens(ids, 0.15, context, generator) for _ in range(2000)]
    chosen = torch.stack([d[1] != IGNORE for d in draws])
    assert not chosen[:, 0].any() and not chosen[:, end:].any()               # start, end, padding
    assert chosen[:, 1:end].float().mean().item() == pytest.approx(0.15, abs=0.01)
    for inputs, labels in draws[:50]:
        assert torch.equal(labels[labels != IGNORE], ids[labels != IGNORE])   # labels are the original ids
        assert torch.equal(inputs[labels == IGNORE], ids[labels == IGNORE])   # nothing else changes
        assert int(inputs.argmax()) == end                                    # open_clip still pools at the end token
    masked = torch.cat([d[0][d[1] != IGNORE] for d in draws])
    original = torch.cat([ids[d[1] != IGNORE] for d in draws])
    mask_share = (masked == context.sot_id).float().mean().item()
    kept_share = (masked == original).float().mean().item()
    assert mask_share == pytest.approx(0.8, abs=0.03) and kept_share == pytest.approx(0.1, abs=0.03)
    small = TextContext(tokenizer, 300)  # random ids come from the model's vocabulary, read not assumed
    replaced = torch.cat([d[0][(d[1] != IGNORE) & (d[0] != 49406)] for d in
                          (mask_tokens(ids, 0.5, small, generator) for _ in range(300))])
    assert replaced.numel() > 0 and ((replaced < 300) | torch.isin(replaced, ids)).all()


def test_blank_mlm_view_labels_the_mask_rate_of_the_context():
    from tierclip.train.augment import ViewConfig

    blank = blank_text_view("text_mlm", 2, 16, ViewConfig(mask_rate=0.15))
    assert blank.shape == (2, 2, 16) and int((blank[:, 1] != IGNORE).sum()) == 2 * round(0.15 * 14)
    assert blank_text_view("text_eda", 2, 16).shape == (2, 16)
