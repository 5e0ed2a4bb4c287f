"""Reference equivalence: each method's recipe computed by hand from the published formulas on a fixed batch (no code
of the reference copied), against what the method computes: losses and gradients to 1e-6, FILIP's scale clamp,
DeCLIP's bank after k steps, SLIP's CLIP-branch crop and its BatchNorm statistics, and the reductions to CLIP."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.train.test_methods import RN, VIT, random_batch, tiny_model_configs  # noqa: F401  (autouse fixture)
from tests.train.test_methods import make as make_method
from tests.train.test_methods_declip import CAPTIONS, batch_for, make


def test_declip_bank_after_k_steps_holds_both_caption_views_eda_first_and_wraps():
    """The reference banks the EDA view, then the masked caption, after each look-up: 2B rows per step, FIFO, the
    remainder wrapped to the start of the bank; the bank starts as random unit vectors."""
    size, steps = 20, 3
    torch.manual_seed(0)
    model, method, _ = make("declip", VIT, declip_queue_size=size)
    model.train()
    method.train()
    expected = method.nn_queue.queue.clone()
    assert torch.allclose(expected.norm(dim=1), torch.ones(size))
    pushed = []
    for step in range(steps):
        batch = batch_for(method, seed=step)
        with torch.no_grad():
            masked = model.encode_text(batch["text_mlm"][:, 0])
            eda = model.encode_text(batch["text_eda"])
        pushed += [*F.normalize(eda, dim=-1), *F.normalize(masked, dim=-1)]
        method(model, batch)
    for position, row in enumerate(pushed):  # 48 rows into 20: each lands at its position modulo the size
        expected[position % size] = row
    assert len(pushed) == 2 * len(CAPTIONS) * steps
    assert torch.allclose(method.nn_queue.queue, expected, atol=1e-6)
    assert int(method.nn_queue.next_row) == len(pushed) % size


# --- SLIP: the CLIP branch's crop, BatchNorm statistics ---------------------------------------------------------------

def coordinate_image(side: int = 96):
    """Red = column, green = row (0..255): a crop's box can be read back from its pixels."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side).round().astype(np.uint8)
    pixels = np.stack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)), np.zeros((side, side), np.uint8)], -1)
    return Image.fromarray(pixels)


def test_slip_clip_branch_trains_on_a_random_resized_crop_of_half_the_image_or_more():
    """facebookresearch/SLIP's train_transform: RandomResizedCrop(scale=(0.5, 1)) for the CLIP branch."""
    from tierclip.train.augment import make_view_transform

    torch.manual_seed(0)
    model, method, _ = make_method("slip", RN)
    assert method.image_view == "image_crop" and "image" not in method.views
    crop = make_view_transform("image_crop", 32, (0.0,) * 3, (1.0,) * 3, method.view_config())
    areas = []
    for seed in range(40):
        torch.manual_seed(seed)
        out = crop(coordinate_image())
        width, height = ((out[c].max() - out[c].min()).item() for c in (0, 1))
        areas.append(width * height)
    assert 0.5 - 0.05 <= min(areas) and max(areas) <= 1.0 and max(areas) - min(areas) > 0.2
    batch = random_batch(method.views)
    model.eval()
    method.eval()
    assert torch.equal(method(model, batch)["clip_loss"], method(model, {**batch, "image": batch["image_crop"] * 0})["clip_loss"])
    _, plain, _ = make_method("slip", RN, slip_clip_crop=False)
    assert plain.image_view == "image" and plain.views[0] == "image"


def test_slip_views_update_the_towers_batchnorm_statistics_one_view_at_a_time():
    """On a BatchNorm tower the reference (Sense-GVT/DeCLIP's SLIP ResNets, SyncBN) passes the CLIP view and each SSL
    view through the tower in its own train-mode call: three momentum updates of the running statistics, one per
    view, each with that view's batch statistics. Checked by hand on the stem's first BatchNorm."""
    torch.manual_seed(0)
    model, method, _ = make_method("slip", RN)
    model.train()
    method.train()
    batch = random_batch(method.views)
    stem = model.visual
    mean, var = stem.bn1.running_mean.clone(), stem.bn1.running_var.clone()
    momentum = stem.bn1.momentum
    with torch.no_grad():
        for view in ("image_crop", "image_ssl1", "image_ssl2"):  # the order of the passes
            features = stem.conv1(batch[view])
            mean = (1 - momentum) * mean + momentum * features.mean(dim=(0, 2, 3))
            var = (1 - momentum) * var + momentum * features.var(dim=(0, 2, 3), unbiased=True)
    clip_only = (1 - momentum) * stem.bn1.running_mean + momentum * stem.conv1(batch["image_crop"]).mean(dim=(0, 2, 3))
    method(model, batch)
    assert torch.allclose(stem.bn1.running_mean, mean, atol=1e-6) and torch.allclose(stem.bn1.running_var, var, atol=1e-6)
    assert not torch.allclose(stem.bn1.running_mean, clip_only.detach(), atol=1e-4)  # what a CLIP-only step would leave


# --- losses and gradients by hand from the published formulas ---------------------------------------------------------

def info_nce(a, b, scale):
    """CLIP's symmetric InfoNCE (Radford et al. 2021): mean of the row-wise and column-wise cross-entropies of
    scale * a bᵀ, the positives on the diagonal; a and b L2-normalised."""
    logits = scale * a @ b.T
    return -((logits.diag() - logits.logsumexp(1)).mean() + (logits.diag() - logits.logsumexp(0)).mean()) / 2


def nt_xent_by_hand(a, b, temperature):
    """SimCLR's NT-Xent (Chen et al. 2020) as SLIP averages it: for each sample of view a, its positive is the same
    sample of view b among every sample of b and every *other* sample of a; the same from view b; mean of the two."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    total = 0.0
    for x, y in ((a, b), (b, a)):
        for i in range(len(x)):
            candidates = torch.cat([x[i] @ y.T, torch.cat([x[:i], x[i + 1:]]) @ x[i]]) / temperature
            total = total - (candidates[i] - candidates.logsumexp(0)) / len(x)
    return total / 2


def filip_by_hand(head, image_tokens, text_tokens, text_valid, topk):
    """FILIP (Yao et al. 2022) with the reference's top-k keys: each sample keeps its k tokens of highest summed
    similarity to its own pair's valid tokens; s_I(i, j) = mean over i's patches of the max over j's kept caption
    tokens, s_T(j, i) = mean over j's valid tokens of the max over i's kept patches; InfoNCE of both, halved."""
    x, y = head.image_features(image_tokens), head.text_features(text_tokens)
    n = len(x)
    kept_x, kept_y = [], []
    for i in range(n):
        valid = text_valid[i].nonzero().flatten().tolist()
        own = x[i] @ y[i, valid].T                                         # patches x valid caption tokens
        kept_x.append(x[i, own.sum(1).detach().topk(min(topk, len(x[i]))).indices])
        kept_y.append(y[i, [valid[t] for t in own.sum(0).detach().topk(min(topk, len(valid))).indices.tolist()]])
    s_image = torch.stack([torch.stack([(x[i] @ kept_y[j].T).max(1).values.mean() for j in range(n)]) for i in range(n)])
    s_text = torch.stack([torch.stack([(y[j, text_valid[j]] @ kept_x[i].T).max(1).values.mean() for i in range(n)])
                          for j in range(n)])
    scale = head.logit_scale.exp().clamp(max=100)  # equal to the capped value's: the gradient check is on the weights
    labels = torch.arange(n)
    return (F.cross_entropy(scale * s_image, labels) + F.cross_entropy(scale * s_text, labels)) / 2


def gradients(loss, params: dict) -> dict:
    found = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {name: (torch.zeros_like(p) if g is None else g) for (name, p), g in zip(params.items(), found, strict=True)}


def assert_same(method_loss, hand_loss, params: dict):
    assert method_loss.item() == pytest.approx(hand_loss.item(), abs=1e-6)
    got, expected = gradients(method_loss, params), gradients(hand_loss, params)
    worst = max((got[n] - expected[n]).abs().max().item() for n in params)
    assert worst <= 1e-6, worst


def in_double(model, method, batch: dict) -> dict:
    """Model and method in train mode and float64 with the batch's images, so 1e-6 compares the arithmetic, not
    float32 rounding."""
    model.double().train()
    method.double().train()
    return {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}


def all_params(model, method) -> dict:
    return {**dict(model.named_parameters()), **{f"method.{n}": p for n, p in method.named_parameters()}}


def encoded(model, images, ids):
    return F.normalize(model.encode_image(images), dim=-1), F.normalize(model.encode_text(ids), dim=-1)


@pytest.mark.parametrize("name, arch", [("clip", RN), ("clip-aug", RN), ("flip", VIT)])
def test_clip_family_loss_and_gradients_by_hand(name, arch):
    torch.manual_seed(0)
    model, method, _ = make_method(name, arch)
    batch = in_double(model, method, random_batch(method.views))
    torch.manual_seed(1)  # FLIP's patch dropout draws the same patches in both passes
    out = method(model, batch)
    torch.manual_seed(1)
    image, text = encoded(model, batch[method.image_view], batch["text"])
    assert_same(out["loss"], info_nce(image, text, model.logit_scale.exp()), all_params(model, method))


def test_slip_loss_and_gradients_by_hand():
    torch.manual_seed(0)
    model, method, cfg = make_method("slip", VIT, slip_ssl_scale=0.7)
    batch = in_double(model, method, random_batch(method.views))
    out = method(model, batch)
    image, text = encoded(model, batch["image_crop"], batch["text"])
    trunk = [method.image_mlp(method.trunk.features(model.visual, batch[v])) for v in ("image_ssl1", "image_ssl2")]
    hand = info_nce(image, text, model.logit_scale.exp()) + 0.7 * nt_xent_by_hand(*trunk, cfg.ssl_temperature)
    assert_same(out["loss"], hand, all_params(model, method))


def test_filip_loss_and_gradients_by_hand():
    torch.manual_seed(0)
    model, method, cfg = make("filip", VIT, filip_topk=5, filip_clip_weight=0.3, filip_weight=1.0)
    batch = in_double(model, method, batch_for(method))
    out = method(model, batch)
    ids = batch["text_mlm"][:, 0]  # the masked caption feeds both losses
    image, text = encoded(model, batch["image_moco1"], ids)
    visual = model.visual
    patches = visual.transformer(visual._embeds(batch["image_moco1"]))[:, 1:]  # before ln_post
    hidden = model.forward_intermediates(text=ids, text_indices=1, normalize=False)["text_intermediates"][-1]
    valid = torch.arange(ids.shape[1])[None, :] <= ids.argmax(1, keepdim=True)
    filip = filip_by_hand(method.filip, patches, model.ln_final(hidden), valid, 5)
    assert_same(out["loss"], 0.3 * info_nce(image, text, model.logit_scale.exp()) + filip, all_params(model, method))


def test_declip_loss_and_gradients_by_hand():
    torch.manual_seed(0)
    model, method, cfg = make("declip", VIT)
    batch = in_double(model, method, batch_for(method))
    bank = method.nn_queue.queue.clone()
    out = method(model, batch)
    ids, labels = batch["text_mlm"][:, 0], batch["text_mlm"][:, 1]
    scale = model.logit_scale.exp()
    views = [model.encode_image(batch[v]) for v in ("image_moco1", "image_moco2")]
    captions = [model.encode_text(ids), model.encode_text(batch["text_eda"])]
    mv = sum(info_nce(F.normalize(i, dim=-1), F.normalize(t, dim=-1), scale) for i in views for t in captions) / 4
    z = [method.simsiam["projector"](v) for v in views]
    p = [method.simsiam["predictor"](v) for v in z]
    simsiam = -(F.cosine_similarity(p[0], z[1].detach()).mean() + F.cosine_similarity(p[1], z[0].detach()).mean()) / 2
    hidden = model.ln_final(model.forward_intermediates(text=ids, text_indices=1, normalize=False)["text_intermediates"][-1])
    chosen = labels != -100
    mlm = F.cross_entropy(method.mlm_head(hidden[chosen]), labels[chosen])
    neighbours = [bank[(F.normalize(t.detach(), dim=-1) @ bank.T).argmax(1)] for t in captions]
    nn = sum(F.cross_entropy(scale * F.normalize(i, dim=-1) @ nb.T, torch.arange(len(i))) for i in views for nb in neighbours) / 4
    hand = 0.4 * mv + 0.2 * simsiam + 0.2 * mlm + 0.2 * nn
    assert_same(out["loss"], hand, all_params(model, method))


def test_filip_token_wise_scale_is_clamped_with_the_models_and_capped_at_100():
    """The reference solver clamps FILIP's own log scale to [3, 6] with the model's: ln(1/0.07) = 2.66 becomes 3
    before the first step; a scale above ln 100 scores as 100."""
    import math

    from tierclip.train.config import OptimConfig
    from tierclip.train.loop import clamp_logit_scales
    from tierclip.train.methods import MethodStep

    torch.manual_seed(0)
    model, method, _ = make("filip", VIT)
    assert method.filip.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    with torch.no_grad():
        model.logit_scale.fill_(7.0)
    clamp_logit_scales(MethodStep(model, method), OptimConfig(lr=1.0, warmup_steps=0, logit_scale_min=3.0, logit_scale_max=6.0))
    assert method.filip.logit_scale.item() == 3.0 and model.logit_scale.item() == 6.0
    tokens = (torch.randn(4, 16, 48), torch.randn(4, 8, 32), torch.ones(4, 8, dtype=torch.bool))
    with torch.no_grad():
        method.filip.logit_scale.fill_(6.0)   # exp 403
        capped = method.filip(*tokens)
        method.filip.logit_scale.fill_(math.log(100))
        assert capped.item() == pytest.approx(method.filip(*tokens).item(), rel=1e-6)


# --- reduces to CLIP ---------------------------------------------------------------------------------------------------

def clip_reference(model, images, ids):
    """The `clip` method's loss and gradients on the given images and captions."""
    clip = make_method("clip", VIT)[1]
    return clip(model, {"image": images, "text": ids})["loss"]


def test_slip_with_ssl_weight_0_is_clip():
    torch.manual_seed(0)
    model, method, _ = make_method("slip", VIT, slip_ssl_scale=0.0)
    batch = in_double(model, method, random_batch(method.views))
    params = dict(model.named_parameters())
    assert_same(method(model, batch)["loss"], clip_reference(model, batch["image_crop"], batch["text"]), params)


def test_filip_with_token_weight_0_global_weight_1_plain_images_and_captions_is_clip():
    torch.manual_seed(0)
    model, method, _ = make("filip", VIT, filip_weight=0.0, filip_clip_weight=1.0, filip_text_mask_rate=0.0,
                            filip_moco_view=False)
    assert method.views == ("image", "text")
    batch = in_double(model, method, batch_for(method))
    params = dict(model.named_parameters())
    assert_same(method(model, batch)["loss"], clip_reference(model, batch["image"], batch["text"]), params)


def test_declip_with_weights_1_0_0_0_no_augmentation_masking_or_eda_is_clip():
    torch.manual_seed(0)
    model, method, _ = make("declip", VIT, declip_clip_weight=1.0, declip_simsiam_weight=0.0, declip_mlm_weight=0.0,
                            declip_nn_weight=0.0)
    batch = in_double(model, method, batch_for(method))
    plain = {"image_moco1": batch["image_moco1"], "image_moco2": batch["image_moco1"], "text_eda": batch["text"],
             "text_mlm": torch.stack([batch["text"], torch.full_like(batch["text"], -100)], dim=1)}
    params = dict(model.named_parameters())
    assert_same(method(model, plain)["loss"], clip_reference(model, batch["image_moco1"], batch["text"]), params)
