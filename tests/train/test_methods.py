"""Every method trains a few steps on a tiny open_clip model: finite loss, gradients everywhere, its own parts."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tierclip.curate.errors import UserError
from tierclip.train.methods import METHODS, MethodStep, build_method, method_config, model_overrides

RN, VIT = "tc-test-rn", "tc-test-vit"
TEXT_CFG = {"context_length": 8, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1}
TINY_CONFIGS = {
    # ResNet tower: width 8 -> a 256-channel last stage, CLIP embedding 32.
    RN: {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "patch_size": None},
         "text_cfg": TEXT_CFG},
    # ViT tower: 8-px patches on 32 px = 16 patches + class token; width 48 != embedding 32.
    VIT: {"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 48, "head_width": 16, "layers": 1,
                                          "mlp_ratio": 2.0}, "text_cfg": TEXT_CFG},
}
PATCHES = 16


@pytest.fixture(scope="module", autouse=True)
def tiny_model_configs(tmp_path_factory):
    import open_clip

    folder = tmp_path_factory.mktemp("model_configs")
    for name, config in TINY_CONFIGS.items():
        (folder / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    return folder


def make(method: str, arch: str, **options):
    """Model and method built with `train run`'s option values (`flip_mask_ratio=0.75`); options of other methods unused."""
    import open_clip

    cfg = method_config(method, {"slip_mlp_dim": 64, "slip_emb_dim": 16, **options})
    model, _, _ = open_clip.create_model_and_transforms(arch, **model_overrides(method, cfg, arch))
    return model, build_method(method, model, cfg), cfg


def random_batch(views, n=8, seed=0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    batch = {view: torch.randn(n, 3, 32, 32, generator=generator) for view in views if view != "text"}
    batch["text"] = torch.randint(1, TEXT_CFG["vocab_size"], (n, TEXT_CFG["context_length"]), generator=generator)
    return batch


def trainable(model, method) -> dict:
    named = dict(model.named_parameters())
    named.update({f"method.{name}": p for name, p in method.named_parameters()})
    return {name: p for name, p in named.items() if p.requires_grad}


def train_steps(model, method, params: dict, batch: dict, steps: int) -> tuple[list[float], dict]:
    """AdamW steps on one batch: every loss part finite at every step, and after the last step a gradient on every
    parameter in `params` (checked after the last step: open_clip's ResNet zero-initialises each block's last
    batch-norm scale, so on the very first step its residual branches get no gradient, by design).
    Returns the losses and the last step's output."""
    optimizer = torch.optim.AdamW(params.values(), lr=1e-3)
    losses = []
    for step in range(steps):
        method.on_progress(model, step / steps)
        out = method(model, batch)
        assert all(math.isfinite(value.item()) for value in out.values()), out
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    silent = [n for n, p in params.items() if p.grad is None or p.grad.abs().sum().item() == 0]
    assert silent == []
    return losses, out


@pytest.mark.parametrize("name, arch", [("clip", RN), ("clip-aug", RN), ("slip", RN), ("slip", VIT), ("flip", VIT)])
def test_method_trains_and_its_gradients_reach_every_parameter(name, arch):
    torch.manual_seed(0)
    model, method, _ = make(name, arch, flip_unmasked_tuning=0.2)
    model.train()
    method.train()
    params = trainable(model, method)
    assert "logit_scale" in params
    losses, out = train_steps(model, method, params, random_batch(method.views), steps=3)
    assert {"loss", "clip_loss"} <= set(out)
    assert losses[-1] < losses[0]


def test_slip_has_its_head_its_loss_parts_and_feeds_the_head_trunk_features():
    torch.manual_seed(0)
    for arch, trunk_dim in ((RN, 8 * 32), (VIT, 48)):
        model, method, _ = make("slip", arch, slip_ssl_scale=0.5)
        head = method.image_mlp
        assert head.layer1.in_features == trunk_dim          # before the CLIP projection (32)
        assert (head.layer1.out_features, head.layer3.out_features) == (64, 16)
        assert any(name.startswith("image_mlp.") for name, _ in method.named_parameters())
        out = method(model, random_batch(method.views))
        assert set(out) == {"loss", "clip_loss", "ssl_loss"}
        assert out["ssl_loss"].item() > 0
        assert torch.allclose(out["loss"], out["clip_loss"] + 0.5 * out["ssl_loss"])


def test_slip_head_size_defaults_scale_with_the_clip_width():
    from tierclip.train.methods.slip import SlipConfig, ssl_dims

    unset = SlipConfig(mlp_dim=None, emb_dim=None)
    assert ssl_dims(unset, 512) == (4096, 256)   # SLIP's own ViT-B/16 head
    assert ssl_dims(unset, 128) == (1024, 64)
    assert ssl_dims(SlipConfig(mlp_dim=300, emb_dim=20), 128) == (300, 20)
    model, method, _ = make("slip", RN, slip_mlp_dim=None, slip_emb_dim=None)
    assert (method.image_mlp.layer1.out_features, method.image_mlp.layer3.out_features) == (256, 16)


def test_nt_xent_matches_simclr_by_hand():
    from tierclip.train.methods.slip import nt_xent

    views = torch.eye(2)
    # Row 0 of view a: positive logit 1/T against the other sample in both views (logit 0 each).
    expected = math.log(1 + 2 * math.exp(-1 / 0.1))
    assert nt_xent(views, views.clone(), 0.1).item() == pytest.approx(expected, abs=1e-6)
    shuffled = nt_xent(views, views.flip(0), 0.1).item()
    assert shuffled > 5


def token_counts(model) -> list[int]:
    counts = []
    model.visual.transformer.register_forward_pre_hook(lambda module, args: counts.append(args[0].shape[1]))
    return counts


def test_flip_drops_patches_while_training_and_tunes_unmasked_at_the_end():
    model, method, cfg = make("flip", VIT, flip_unmasked_tuning=0.1)
    assert model_overrides("flip", cfg) == {"force_patch_dropout": 0.5}
    counts = token_counts(model)
    images = torch.randn(2, 3, 32, 32)
    model.train()
    method.on_progress(model, 0.5)
    model.encode_image(images)
    method.on_progress(model, 0.95)       # the final 10%: unmasked tuning
    model.encode_image(images)
    method.on_progress(model, 0.2)
    model.encode_image(images)
    model.eval()                          # evaluation never masks
    model.encode_image(images)
    assert counts == [1 + PATCHES // 2, 1 + PATCHES, 1 + PATCHES // 2, 1 + PATCHES]


def test_flip_mask_ratio_075_and_no_tuning_phase_by_default():
    model, method, _ = make("flip", VIT, flip_mask_ratio=0.75)
    counts = token_counts(model)
    model.train()
    method.on_progress(model, 1.0)
    model.encode_image(torch.randn(2, 3, 32, 32))
    assert counts == [1 + PATCHES // 4]


def test_flip_refuses_a_resnet_tower_and_a_bad_mask_ratio():
    import open_clip
    from tierclip.train.methods.flip import FlipConfig

    cfg = FlipConfig()
    with pytest.raises(UserError, match="ResNet"):
        model_overrides("flip", cfg, RN)
    resnet = open_clip.create_model(RN, **model_overrides("flip", cfg))   # open_clip ignores patch dropout here
    with pytest.raises(UserError, match="patch dropout"):
        build_method("flip", resnet, cfg)
    with pytest.raises(UserError, match="--flip-mask-ratio 1.0: must be a number in \\(0, 1\\)"):
        FlipConfig(mask_ratio=1.0)  # the field's bounds: checked once, wherever the config is made
    with pytest.raises(UserError, match="--flip-unmasked-tuning"):
        method_config("flip", {"flip_unmasked_tuning": 1.5})


def test_registry_contract_and_unknown_method():
    from tierclip.train.augment import VIEWS
    from tierclip.train.text_views import TEXT_VIEWS

    for name, method in METHODS.items():
        assert set(method.views) <= set(VIEWS) | set(TEXT_VIEWS) | {"text"}, name
        assert any(view.startswith("text") for view in method.views) and isinstance(method.model_overrides, dict)
        assert callable(method.on_progress) and callable(method.forward)
    assert model_overrides("clip") == {}
    assert model_overrides("flip") == {"force_patch_dropout": 0.5}
    with pytest.raises(UserError, match="clip, clip-aug, slip, flip, declip, filip, defilip"):
        build_method("siglip", None)
    with pytest.raises(UserError, match="unknown method 'nope'"):
        model_overrides("nope")


def test_method_step_holds_model_and_heads_for_ddp():
    torch.manual_seed(0)
    model, method, _ = make("slip", RN)
    step = MethodStep(model, method)
    names = {name for name, _ in step.named_parameters()}
    assert "model.logit_scale" in names and "method.image_mlp.layer1.weight" in names
    batch = random_batch(method.views)
    step.eval()
    assert torch.allclose(step(batch)["loss"], method(model, batch)["loss"])


# --- Distributed: the gathered losses equal the single-process loss on the same global batch ---------------------

def _distributed_losses(rank, world_size, rendezvous, features, out_dir):
    import torch.distributed as dist
    from tierclip.train.methods.common import clip_loss
    from tierclip.train.methods.slip import nt_xent

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        local = {k: v.chunk(world_size)[rank].clone().requires_grad_(True) for k, v in features.items()}
        cfg = None
        clip = clip_loss({"image_features": local["image"], "text_features": local["text"],
                          "logit_scale": torch.tensor(10.0)}, cfg)
        ssl = nt_xent(local["a"], local["b"], 0.1, rank, world_size)
        (clip + ssl).backward()
        # DDP averages gradients over ranks; the all-gather's backward sums them: divide by world_size.
        torch.save({"clip": clip.item(), "ssl": ssl.item(),
                    "grads": {k: v.grad / world_size for k, v in local.items()}}, out_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_losses_under_two_gloo_processes_match_one_process(tmp_path):
    import torch.nn.functional as F
    from tierclip.train.methods.common import clip_loss
    from tierclip.train.methods.slip import nt_xent

    generator = torch.Generator().manual_seed(0)
    features = {k: torch.randn(8, 16, generator=generator) for k in ("image", "text", "a", "b")}
    features["image"], features["text"] = F.normalize(features["image"], dim=-1), F.normalize(features["text"], dim=-1)
    torch.multiprocessing.spawn(_distributed_losses, args=(2, tmp_path / "rendezvous", features, tmp_path), nprocs=2)

    whole = {k: v.clone().requires_grad_(True) for k, v in features.items()}
    clip = clip_loss({"image_features": whole["image"], "text_features": whole["text"],
                      "logit_scale": torch.tensor(10.0)}, None)
    ssl = nt_xent(whole["a"], whole["b"], 0.1)
    (clip + ssl).backward()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["clip"] == pytest.approx(clip.item(), rel=1e-5)
        assert got["ssl"] == pytest.approx(ssl.item(), rel=1e-5)
        for k, grad in got["grads"].items():
            assert torch.allclose(grad, whole[k].grad.chunk(2)[rank], atol=1e-6), k
