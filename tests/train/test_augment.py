"""View transforms: right shapes, the plain view is open_clip's eval preprocess, aug views really augment."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from tierclip.curate.errors import UserError
from tierclip.train.augment import VIEWS, AugmentConfig, ViewConfig, blur_kernel_size, make_view_transform

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def picture(width=48, height=40, seed=0) -> Image.Image:
    """A colourful, non-square test image: noise over a gradient, so crops and jitter show."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, width)[None, :, None] * np.array([1.0, 0.5, 0.2])
    pixels = np.clip(gradient + rng.normal(0, 40, (height, width, 3)), 0, 255).astype("uint8")
    return Image.fromarray(pixels)


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("size", [32, 64])
def test_every_view_gives_a_normalised_tensor_of_the_model_size(view, size):
    tensor = make_view_transform(view, size, MEAN, STD, AugmentConfig())(picture())
    assert tensor.shape == (3, size, size) and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()


def test_plain_view_is_open_clips_eval_preprocess_and_deterministic():
    import open_clip

    plain = make_view_transform("image", 32, MEAN, STD)
    reference = open_clip.image_transform(32, is_train=False, mean=MEAN, std=STD)
    image = picture()
    assert torch.equal(plain(image), reference(image))
    assert torch.equal(plain(image), plain(image))
    assert plain(picture().convert("L")).shape == (3, 32, 32)   # grayscale inputs become RGB


@pytest.mark.parametrize("view", ["image_aug", "image_ssl1", "image_ssl2", "image_moco1", "image_moco2"])
def test_augmented_views_differ_from_the_plain_view_and_between_draws(view):
    torch.manual_seed(0)
    image = picture()
    plain = make_view_transform("image", 32, MEAN, STD)(image)
    augment = make_view_transform(view, 32, MEAN, STD, AugmentConfig())
    first, second = augment(image), augment(image)
    assert not torch.allclose(first, plain, atol=1e-3)
    assert not torch.allclose(first, second, atol=1e-3)
    assert augment(picture().convert("RGBA")).shape == (3, 32, 32)


@pytest.mark.parametrize("view", sorted(set(VIEWS) - {"image"}))
def test_augmentation_off_makes_every_view_deterministic(view):
    """Every augmented view, SLIP's CLIP-branch crop included."""
    from tierclip.train.augment import AUGMENTATION_OFF, augmented_views

    torch.manual_seed(0)
    image = picture(40, 40)
    augment = make_view_transform(view, 32, MEAN, STD, ViewConfig(aug=AugmentConfig.from_options(dict(AUGMENTATION_OFF))))
    draws = [augment(image) for _ in range(4)]
    assert all(torch.allclose(draws[0], other) for other in draws[1:])
    assert augmented_views(("image", "text", "image_ssl1", "image_ssl2", "text_mlm")) == ("image_ssl1", "image_ssl2")


def test_aug_options_reach_the_transform():
    always_gray = AugmentConfig(grayscale_p=1.0, jitter_p=0.0, blur_p=0.0)
    tensor = make_view_transform("image_aug", 32, MEAN, STD, always_gray)(picture())
    pixels = tensor * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    assert torch.allclose(pixels[0], pixels[1], atol=1e-5) and torch.allclose(pixels[1], pixels[2], atol=1e-5)
    never = ViewConfig(aug=AugmentConfig.from_options({"crop_scale": [1.0, 1.0], "jitter_p": 0, "grayscale_p": 0, "blur_p": 0}))
    colour = make_view_transform("image_aug", 32, MEAN, STD, never)(picture())
    assert not torch.allclose(colour[0], colour[1], atol=1e-2)
    assert AugmentConfig.from_options({"crop_scale": [0.3, 0.9]}).crop_scale == (0.3, 0.9)   # JSON lists become tuples


def test_blur_kernel_is_ten_percent_of_the_image_side_odd_and_at_least_three():
    assert [blur_kernel_size(side) for side in (16, 32, 64, 224)] == [3, 3, 7, 23]
    assert blur_kernel_size((64, 48)) == 5


def test_view_transforms_pickle_for_loader_workers():
    for view in VIEWS:
        transform = pickle.loads(pickle.dumps(make_view_transform(view, 32, MEAN, STD)))
        assert transform(picture()).shape == (3, 32, 32)


def test_unknown_view_and_bad_options_are_user_errors():
    with pytest.raises(UserError, match="unknown image view 'image_aug1'.*image_ssl1"):
        make_view_transform("image_aug1", 32, MEAN, STD)
    with pytest.raises(UserError, match="text is tokenised"):
        make_view_transform("text", 32, MEAN, STD)
    with pytest.raises(UserError, match="unknown option.*blur_prob"):
        AugmentConfig.from_options({"blur_prob": 0.5})
    with pytest.raises(UserError, match="grayscale_p"):
        AugmentConfig(grayscale_p=1.5)
    with pytest.raises(UserError, match="crop_scale"):
        AugmentConfig(crop_scale=(0.9, 0.1))
    with pytest.raises(UserError, match="two numbers"):
        AugmentConfig(blur_sigma=0.5)


def test_every_view_has_a_named_recipe_reading_augment_fields():
    import dataclasses

    from tierclip.train.augment import VIEW_RECIPES, VIEWS, AugmentConfig, ViewConfig, describe_views
    from tierclip.train.text_views import TEXT_VIEWS

    assert set(VIEW_RECIPES) == set(VIEWS) | set(TEXT_VIEWS) | {"text"}
    fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    assert all(set(knobs) <= fields for _, knobs in VIEW_RECIPES.values())
    lines = describe_views(("image_crop", "text", "image_ssl1", "image_ssl2"), ViewConfig(AugmentConfig(jitter_p=0.0)))
    assert lines[0] == "image_crop: SLIP CLIP branch (facebookresearch/SLIP train_transform) [slip_crop_scale=0.5,1]"
    assert lines[2].startswith("image_ssl1, image_ssl2: SimCLR (SLIP's SSL views) [ssl_crop_scale=0.08,1 flip_p=0.5 jitter=0.4 "
                               "jitter_p=0 ")


def test_aug_items_read_back_through_the_aug_option_give_the_same_table():
    """AUGMENTATION_OFF (ranges as tuples) and a sweep file's [options.aug] (ranges as lists) reach `--aug` as items
    that `train run` parses back to the same configuration."""
    from tierclip.curate.cliopts import key_value
    from tierclip.train.augment import AUGMENTATION_OFF, aug_items

    def parsed(items):
        return AugmentConfig.from_options(dict(key_value(item, AugmentConfig, "--aug") for item in items))

    off = AugmentConfig.from_options(dict(AUGMENTATION_OFF))
    assert off != AugmentConfig()
    assert parsed(aug_items(AUGMENTATION_OFF)) == off
    as_lists = {key: list(v) if isinstance(v, tuple) else v for key, v in AUGMENTATION_OFF.items()}
    assert parsed(aug_items(as_lists)) == off
