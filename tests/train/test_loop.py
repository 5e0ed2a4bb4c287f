"""The training loop with a minimal CLIP method: finite loss, logs, schedule, param groups, open_clip-loadable checkpoint."""

from __future__ import annotations

import json
import math

import pytest
from tierclip.curate.fields import NoOptions
from tierclip.train.config import OptimConfig, RunConfig
from tierclip.train.distributed import DistContext
from tierclip.train.loop import CHECKPOINT, METRICS, RESUME, build_optimizer, lr_factor, train_loop

from tests.train.helpers import TinyClip, color_pool


def _dataset(pool, seed=0):
    import open_clip
    from tierclip.train.data import PositionDataset, build_index
    from tierclip.train.models import get_tokenizer

    _, _, preprocess = open_clip.create_model_and_transforms("tc-rn-tiny")
    return PositionDataset(build_index(pool, None), {"image": preprocess}, get_tokenizer("tc-rn-tiny"), seed)


def _config(out, **changes) -> RunConfig:
    base = dict(out=str(out), pool="unused", subset=None, method="tiny-clip", model="tc-rn-tiny", pretrained=None,
                scale="debug", samples_seen=64, batch_size=8, optim=OptimConfig(lr=1e-3, warmup_steps=2),
                method_cfg=NoOptions(), checkpoint_every=3, log_every=2, loader_workers=0)
    return RunConfig(**{**base, **changes})


def test_loop_trains_logs_and_writes_an_open_clip_checkpoint(tmp_path):
    import open_clip
    import torch
    from tierclip.train.models import create_model

    pool = color_pool(tmp_path / "pool", shards=2, per_shard=12)
    torch.manual_seed(0)
    model, _, _ = create_model("tc-rn-tiny")
    method = TinyClip.build(model, None)
    cfg = _config(tmp_path / "run")
    (tmp_path / "run").mkdir()
    state = train_loop(model, method, _dataset(pool), cfg, DistContext(), tmp_path / "run")

    assert state.step == cfg.steps == 8 and state.samples_seen == 64
    rows = [json.loads(line) for line in (tmp_path / "run" / METRICS).read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert all(math.isfinite(r["loss"]) and r["loss"] == r["clip_loss"] for r in rows)
    assert rows[-1]["samples_seen"] == 64 and rows[0]["lr"] > rows[-1]["lr"]
    assert method.seen_progress[0] == 0.0 and method.seen_progress[-1] == 1.0
    assert method.seen_progress == sorted(method.seen_progress)

    loaded, _, _ = open_clip.create_model_and_transforms("tc-rn-tiny", pretrained=str(tmp_path / "run" / CHECKPOINT))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    saved = torch.load(tmp_path / "run" / RESUME, weights_only=True)
    assert saved["step"] == 8 and saved["data_position"] == 64 and len(saved["rng"]) == 1


def test_lr_warms_up_then_decays_to_zero():
    factors = [lr_factor(step, warmup=4, total=20) for step in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    assert lr_factor(20, 4, 20) == pytest.approx(0.0)


def test_no_weight_decay_on_gains_biases_and_logit_scale():
    from tierclip.train.models import create_model

    model, _, _ = create_model("tc-rn-tiny")
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3, warmup_steps=1, weight_decay=0.1))
    no_decay = {id(p) for p in optimizer.param_groups[0]["params"]}
    decay = {id(p) for p in optimizer.param_groups[1]["params"]}
    assert id(model.logit_scale) in no_decay and id(model.token_embedding.weight) in decay
    assert all(p.ndim >= 2 for p in optimizer.param_groups[1]["params"])
    assert len(no_decay) + len(decay) == len(list(model.parameters()))
    assert optimizer.param_groups[1]["weight_decay"] == 0.1 and optimizer.defaults["betas"] == (0.9, 0.98)


@pytest.mark.parametrize("start, window, first", [(math.log(500), (0.0, math.log(100)), 100.0),
                                                  (math.log(1 / 0.07), (3.0, 6.0), math.exp(3.0))])
def test_logit_scale_window_holds_before_the_first_step_and_after_each(tmp_path, start, window, first):
    """The reference solvers clamp the log scale before the first step too: DeCLIP's [3, 6] raises ln(1/0.07) to 3."""
    import torch
    from tierclip.train.models import create_model

    pool = color_pool(tmp_path / "pool", shards=1, per_shard=8)
    model, _, _ = create_model("tc-rn-tiny")
    with torch.no_grad():
        model.logit_scale.fill_(start)
    cfg = _config(tmp_path / "run", samples_seen=16, accum_steps=2,  # two micro-batches of 4 per step
                  optim=OptimConfig(lr=1e-3, warmup_steps=1, logit_scale_min=window[0], logit_scale_max=window[1]))
    (tmp_path / "run").mkdir()
    method = TinyClip.build(model, None)
    train_loop(model, method, _dataset(pool), cfg, DistContext(), tmp_path / "run")
    assert method.seen_scales[0] == pytest.approx(first, rel=1e-6) == method.seen_scales[1]  # both micro-batches of step 1
    assert all(math.exp(window[0]) * (1 - 1e-6) <= s <= math.exp(window[1]) * (1 + 1e-6) for s in method.seen_scales)
    assert window[0] <= model.logit_scale.item() <= window[1]


def test_losses_and_weights_do_not_depend_on_the_loader_workers(tmp_path):
    """The data path (loader worker processes, prefetch, the order in which a batch is counted and moved to the
    device) changes when the work is done, never the numbers: every logged loss and the final weights are equal."""
    import torch
    from tierclip.train.models import create_model

    pool = color_pool(tmp_path / "pool", shards=2, per_shard=12)
    runs = {}
    for workers in (0, 2):
        torch.manual_seed(0)
        model, _, _ = create_model("tc-rn-tiny")
        out = tmp_path / f"run-{workers}"
        out.mkdir()
        cfg = _config(out, samples_seen=32, log_every=1, loader_workers=workers)
        train_loop(model, TinyClip.build(model, None), _dataset(pool), cfg, DistContext(), out)
        losses = [json.loads(line)["loss"] for line in (out / METRICS).read_text().splitlines()]
        runs[workers] = (losses, model.state_dict())
    assert len(runs[0][0]) == 4 and runs[0][0] == runs[2][0]
    assert all(torch.equal(tensor, runs[2][1][name]) for name, tensor in runs[0][1].items())
