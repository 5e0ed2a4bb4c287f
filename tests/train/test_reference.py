"""Reference equivalence: each method's recipe computed by hand from the published formulas on a fixed batch (no code
of the reference copied), against what the method computes: losses and gradients to 1e-6, FILIP's scale clamp,
DeCLIP's bank after k steps, SLIP's CLIP-branch crop and its BatchNorm statistics, and the reductions to CLIP."""

from __future__ import annotations

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
