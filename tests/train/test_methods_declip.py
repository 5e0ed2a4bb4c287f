"""DeCLIP, FILIP and DeFILIP: training, loss parts, gradient paths, FILIP's similarity by hand, the NN queue, FLOPs."""

from __future__ import annotations

import pytest
import torch
from tierclip.curate.errors import UserError
from tierclip.train.methods import build_method, method_config, model_overrides
from tierclip.train.text_views import IGNORE, TextContext, mask_tokens

from tests.train.test_methods import PATCHES, RN, TEXT_CFG, VIT, tiny_model_configs, train_steps, trainable  # noqa: F401  (autouse fixture)

VOCAB, CONTEXT = TEXT_CFG["vocab_size"], TEXT_CFG["context_length"]
SOT, EOT = VOCAB - 2, VOCAB - 1  # a tiny vocabulary: the special ids are its last two, as in CLIP's BPE


class TinyTokenizer:
    """Word -> id in [1, SOT) by position in a small word list; start/end-of-text like open_clip's tokenizer."""

    sot_token_id, eot_token_id = SOT, EOT
    words = "a photo of the red green blue yellow circle square star shape two small big".split()

    def __call__(self, texts):
        out = torch.zeros(len(texts), CONTEXT, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [SOT] + [1 + self.words.index(w) if w in self.words else 900 for w in text.split()][: CONTEXT - 2] + [EOT]
            out[row, : len(ids)] = torch.tensor(ids)
        return out


CAPTIONS = ["a photo of a red circle", "a blue square", "two small yellow stars", "a big green shape",
            "a photo of the blue star", "a red square", "a small circle", "the yellow shape"]


def make(method: str, arch: str, **options):
    import open_clip

    cfg = method_config(method, {"declip_queue_size": 32, "declip_simsiam_dim": 64, "declip_simsiam_pred_dim": 16,
                                 "filip_dim": 24, **options})
    model, _, _ = open_clip.create_model_and_transforms(arch, **model_overrides(method, cfg, arch))
    return model, build_method(method, model, cfg), cfg


def batch_for(method, seed=0, mask_rate=0.3) -> dict:
    from tierclip.train.text_views import eda

    generator = torch.Generator().manual_seed(seed)
    tokenizer = TinyTokenizer()
    context = TextContext(tokenizer, VOCAB)
    batch = {view: torch.randn(len(CAPTIONS), 3, 32, 32, generator=generator) for view in method.views if view.startswith("image")}
    batch["text"] = tokenizer(CAPTIONS)
    batch["text_mlm"] = torch.stack([mask_tokens(ids, mask_rate, context, generator) for ids in batch["text"]])
    import random

    rng = random.Random(seed)
    batch["text_eda"] = tokenizer([eda(caption, rng) for caption in CAPTIONS])
    return batch


PARTS = {"declip": {"clip_loss", "simsiam_loss", "mlm_loss", "nn_loss"}, "filip": {"clip_loss", "filip_loss"},
         "defilip": {"clip_loss", "simsiam_loss", "mlm_loss", "nn_loss", "filip_loss"}}


@pytest.mark.parametrize("name, arch", [("declip", RN), ("declip", VIT), ("filip", VIT), ("defilip", VIT)])
def test_new_methods_train_log_their_parts_and_reach_every_parameter(name, arch):
    torch.manual_seed(0)
    model, method, cfg = make(name, arch)
    model.train()
    method.train()
    params = trainable(model, method)
    assert any(n.startswith("method.") for n in params)  # the heads are the method's parameters
    losses, out = train_steps(model, method, params, batch_for(method), steps=4)
    assert set(out) == {"loss"} | PARTS[name]
    assert losses[-1] < losses[0]
    if name != "filip":
        weights = {"clip_loss": 0.4, "simsiam_loss": 0.2, "mlm_loss": 0.2, "nn_loss": 0.2, "filip_loss": 0.2}
        assert out["loss"].item() == pytest.approx(sum(weights[k] * out[k].item() for k in PARTS[name]), rel=1e-5)
        assert int(method.nn_queue.filled) == 32 and method.mlm_head.out_features == VOCAB  # vocabulary from the model
    else:
        assert out["loss"].item() == pytest.approx(out["clip_loss"].item() + out["filip_loss"].item(), rel=1e-5)


def test_nn_supervision_reaches_the_image_tower_only():
    torch.manual_seed(0)
    model, method, _ = make("declip", VIT)
    model.train()
    method.train()
    method.nn_queue.push(torch.nn.functional.normalize(torch.randn(32, 32), dim=-1))
    batch = batch_for(method)
    image1, image2 = model.encode_image(batch["image_moco1"]), model.encode_image(batch["image_moco2"])
    caption, eda = model.encode_text(batch["text"]), model.encode_text(batch["text_eda"])
    method.nn_loss((image1, image2), (caption, eda), model.logit_scale).backward()
    grads = {n: p.grad is not None and p.grad.abs().sum().item() > 0 for n, p in model.named_parameters()}
    assert grads["logit_scale"]  # the shared temperature
    image = {n: g for n, g in grads.items() if n.startswith("visual.")}
    text = {n: g for n, g in grads.items() if not n.startswith("visual.") and n != "logit_scale"}
    assert all(image.values()) and text and not any(text.values())


def test_nn_queue_is_a_fifo_of_the_latest_embeddings_and_finds_the_nearest():
    from tierclip.train.methods.declip import NNQueue

    queue = NNQueue(4, 2)
    assert queue.nearest(torch.tensor([[1.0, 0.0]])) is None
    queue.push(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    queue.push(torch.tensor([[0.0, -1.0], [0.6, 0.8]]))  # overwrites the oldest row
    assert int(queue.filled) == 4 and int(queue.next_row) == 1
    assert torch.equal(queue.queue[0], torch.tensor([0.6, 0.8]))
    nearest = queue.nearest(torch.tensor([[0.1, 1.0], [0.9, 0.1]]))
    assert torch.equal(nearest, torch.tensor([[0.0, 1.0], [0.6, 0.8]]))


def test_filip_similarity_of_a_hand_made_pair_excludes_padding():
    from tierclip.train.methods.filip import late_interaction
    from tierclip.train.methods.towers import text_valid_mask

    image = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])                          # 2 patch tokens
    text = torch.tensor([[[0.6, 0.8], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]]])  # 2 caption tokens + 2 padding
    ids = torch.tensor([[SOT, EOT, 0, 0]])
    valid = text_valid_mask(ids)
    assert valid.tolist() == [[True, True, False, False]]
    image_valid = torch.ones(1, 2, dtype=torch.bool)
    # s_I: patch (1,0) -> max(0.6, 1.0) = 1.0; patch (0,1) -> max(0.8, 0.0) = 0.8; mean 0.9 (padding (0,1) would give 1.0)
    assert late_interaction(image, image_valid, text, valid).item() == pytest.approx(0.9)
    # s_T: token (0.6,0.8) -> 0.8, token (1,0) -> 1.0; mean over the 2 real tokens only = 0.9 (with padding: (0.8+1+0+1)/4)
    assert late_interaction(text, valid, image, image_valid).item() == pytest.approx(0.9)
    everything = torch.ones(1, 4, dtype=torch.bool)
    assert late_interaction(image, image_valid, text, everything).item() == pytest.approx(1.0)


def test_filip_keeps_the_top_k_valid_tokens_as_keys():
    from tierclip.train.methods.filip import select_keys

    tokens = torch.arange(12.0).reshape(1, 4, 3)
    valid = torch.tensor([[True, True, True, False]])
    scores = torch.tensor([[0.1, 0.9, 0.5, 5.0]])  # the padded token scores highest but is never picked
    picked, picked_valid = select_keys(tokens, valid, scores, 2)
    assert torch.equal(picked, tokens[:, [1, 2]]) and picked_valid.all()
    assert select_keys(tokens, valid, scores, 0)[0] is tokens


def test_filip_and_defilip_refuse_a_resnet_tower_declip_takes_it():
    with pytest.raises(UserError, match="filip: model tc-test-rn has a ResNet image tower"):
        model_overrides("filip", None, RN)
    with pytest.raises(UserError, match="defilip: .*ResNet"):
        model_overrides("defilip", None, RN)
    assert model_overrides("declip", None, RN) == {}
    with pytest.raises(UserError, match="--declip-mask-rate 0.0: must be a number in"):
        make("declip", VIT, declip_mask_rate=0.0)


def test_mlm_loss_is_the_mean_cross_entropy_over_masked_tokens():
    torch.manual_seed(0)
    model, method, _ = make("declip", VIT)
    tokens = torch.randn(2, CONTEXT, TEXT_CFG["width"])
    labels = torch.full((2, CONTEXT), IGNORE)
    labels[0, 2], labels[1, 5] = 7, 11
    logits = method.mlm_head(torch.stack([tokens[0, 2], tokens[1, 5]]))
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([7, 11]))
    assert method.mlm_loss(tokens, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert method.mlm_loss(tokens, torch.full((2, CONTEXT), IGNORE)).item() == 0.0


def test_flop_count_covers_views_heads_and_token_interaction():
    """A hand count of what DeCLIP and FILIP add on a tiny ViT, and FILIP's pairwise part at the global batch."""
    from tierclip.train.flops import forward_gflops_per_sample, method_gflops_per_sample

    torch.manual_seed(0)
    model, declip, cfg = make("declip", VIT)
    base = forward_gflops_per_sample(model, 32, CONTEXT) * 1e9            # one image + one caption
    embed, width = 32, TEXT_CFG["width"]
    head = 2 * (embed * 64 + 64 * 64 + 64 * 64 + 64 * 16 + 16 * 64)      # SimSiam projector + predictor per view
    masked = round(0.15 * (CONTEXT - 2))                                   # labelled positions of the blank caption
    extra = (2 * head + 2 * masked * width * VOCAB                        # two views through the head; MLM head
             + 2 * 2 * 32 * embed)                                         # NN look-up of 2 captions over the queue
    counted = method_gflops_per_sample(declip, model, 32, CONTEXT) * 1e9 / 3
    # Two image and two text tower passes; the CLIP/NN logits (batch x embedding per sample) are not counted.
    assert counted == pytest.approx(2 * base + extra, rel=2e-3)

    model, filip, cfg = make("filip", VIT)
    base = forward_gflops_per_sample(model, 32, CONTEXT) * 1e9
    dim, vision_width, keep = 24, 48, 16
    projections = 2 * PATCHES * vision_width * dim + 2 * CONTEXT * width * dim
    own = 2 * PATCHES * CONTEXT * dim                                     # each token against its own pair (top-k scores)
    pairwise = lambda n: 2 * n * dim * (PATCHES * min(keep, CONTEXT) + CONTEXT * min(keep, PATCHES))  # noqa: E731
    at_2 = method_gflops_per_sample(filip, model, 32, CONTEXT) * 1e9 / 3
    assert at_2 == pytest.approx(base + projections + own + pairwise(2), rel=2e-3)
    at_64 = method_gflops_per_sample(filip, model, 32, CONTEXT, global_batch=64) * 1e9 / 3
    assert at_64 - at_2 == pytest.approx(pairwise(64) - pairwise(2), rel=1e-9)
    # The analytic pairwise part is what FlopCounterMode counts on a real batch of 8, up to the CLIP logits left
    # out by convention (two batch x batch x embedding products: 4 x batch x embedding per sample).
    clip_logits = 4 * (8 - 2) * embed
    assert method_gflops_per_sample(filip, model, 32, CONTEXT, batch=8) * 1e9 / 3 == pytest.approx(
        method_gflops_per_sample(filip, model, 32, CONTEXT, global_batch=8) * 1e9 / 3 + clip_logits, rel=1e-9)


# --- Distributed: FILIP's gathered token interaction gives one process's loss and gradients ------------------------

def _filip_on_two_ranks(rank, world_size, rendezvous, inputs, out_dir):
    import torch.distributed as dist
    from tierclip.train.methods.filip import FilipHead, FilipHeadConfig

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        head = FilipHead(6, 5, FilipHeadConfig(dim=8, topk=2))  # rank and world size: the process group's
        image, text = (inputs[k].chunk(world_size)[rank].clone().requires_grad_(True) for k in ("image", "text"))
        loss = head(image, text, inputs["valid"].chunk(world_size)[rank])
        loss.backward()
        # DDP averages parameter gradients over ranks; the gathers' backward sums the input gradients.
        torch.save({"loss": loss.item(), "image": image.grad / world_size, "text": text.grad / world_size,
                    "proj": head.image_proj.weight.grad / world_size}, out_dir / f"rank{rank}.pt")
    finally:
        dist.barrier()  # a rank that tears gloo down while the other still runs its backward all_to_all aborts it
        dist.destroy_process_group()


def test_filip_under_two_gloo_processes_matches_one_process(tmp_path):
    """A regression test: gloo's all_to_all (the all-gather's backward) garbles the non-contiguous gradients an
    einsum produces unless they are made contiguous (train.methods.common._contiguous_grad)."""
    from tierclip.train.methods.filip import FilipHead, FilipHeadConfig

    generator = torch.Generator().manual_seed(1)
    inputs = {"image": torch.randn(8, 4, 6, generator=generator), "text": torch.randn(8, 3, 5, generator=generator),
              "valid": torch.ones(8, 3, dtype=torch.bool)}
    inputs["valid"][::2, 2] = False
    torch.multiprocessing.spawn(_filip_on_two_ranks, args=(2, tmp_path / "rendezvous", inputs, tmp_path), nprocs=2)
    torch.manual_seed(0)
    head = FilipHead(6, 5, FilipHeadConfig(dim=8, topk=2))
    image, text = inputs["image"].clone().requires_grad_(True), inputs["text"].clone().requires_grad_(True)
    loss = head(image, text, inputs["valid"])
    loss.backward()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(r["loss"] == pytest.approx(loss.item(), rel=1e-6) for r in ranks)
    assert torch.allclose(torch.cat([r["image"] for r in ranks]), image.grad, atol=1e-6)
    assert torch.allclose(torch.cat([r["text"] for r in ranks]), text.grad, atol=1e-6)
    assert torch.allclose(ranks[0]["proj"] + ranks[1]["proj"], head.image_proj.weight.grad, atol=1e-5)
