"""Reference equivalence: each method's recipe computed by hand from the published formulas on a fixed batch (no code
of the reference copied), against what the method computes: losses and gradients to 1e-6, FILIP's scale clamp,
DeCLIP's bank after k steps, SLIP's CLIP-branch crop and its BatchNorm statistics, and the reductions to CLIP."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.train.test_methods import VIT, tiny_model_configs  # noqa: F401  (autouse fixture)
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
