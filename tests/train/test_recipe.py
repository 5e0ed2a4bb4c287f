"""The methods' reference recipes at run level: per-method defaults of --grad-clip and the logit-scale window,
recorded in config.json, overridable, documented in docs/train.md."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.fields import check_value
from tierclip.train.config import RunOptions, make_run_config
from tierclip.train.methods import METHODS

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = {"clip": (0.0, 0.0, math.log(100)), "clip-aug": (0.0, 0.0, math.log(100)), "slip": (0.0, 0.0, math.log(100)),
             "flip": (0.0, 0.0, math.log(100)), "declip": (0.0, 3.0, 6.0), "filip": (0.0, 3.0, 6.0),
             "defilip": (0.0, 3.0, 6.0)}


def optim_of(method: str, **values):
    return make_run_config("out", "pool", method=method, scale="debug", **values).optim


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_runs_its_reference_recipe_unless_told_otherwise(method):
    optim = optim_of(method)
    assert (optim.grad_clip, optim.logit_scale_min, optim.logit_scale_max) == pytest.approx(REFERENCE[method])
    given = optim_of(method, grad_clip=1.0, logit_scale_min=1.0, logit_scale_max=5.0)
    assert (given.grad_clip, given.logit_scale_min, given.logit_scale_max) == (1.0, 1.0, 5.0)
    recorded = make_run_config("out", "pool", method=method, scale="debug").to_json()["optim"]
    assert recorded["grad_clip"] == REFERENCE[method][0] and recorded["logit_scale_max"] == pytest.approx(REFERENCE[method][2])


def test_run_defaults_are_run_options_within_their_bounds():
    fields = {f.name: f for f in dataclasses.fields(RunOptions)}
    hints = typing.get_type_hints(RunOptions)
    for method in METHODS.values():
        for key, value in method.run_defaults.items():
            check_value(f"--{key}", value, fields[key], hints[key])  # raises on a value the option refuses


def test_an_empty_window_is_refused():
    with pytest.raises(UserError, match="--logit-scale-min 4 is above --logit-scale-max 3.5 \\(method declip\\)"):
        optim_of("declip", logit_scale_min=4.0, logit_scale_max=3.5)
    with pytest.raises(UserError, match="--logit-scale-min 5 is above --logit-scale-max 4.60517"):
        optim_of("clip", logit_scale_min=5.0)


def test_docs_train_table_states_each_methods_defaults():
    rows = re.findall(r"^\s*\| ([a-z, -]+) \| ([\d.]+)[^|]*\| ([\d.]+) \| ([\d.]+)[^|]*\|", (DOCS / "train.md").read_text(), re.M)
    documented = {name.strip(): tuple(float(v) for v in values) for names, *values in rows for name in names.split(",")}
    assert set(documented) == set(METHODS)
    for method, values in documented.items():
        assert values == pytest.approx(REFERENCE[method], abs=1e-4), method


def test_the_cap_keeps_the_gradient_of_the_capped_value():
    """The reference caps exp(log scale) at 100 by overwriting its `.data`: value 100, d/dlog = dL/dscale * 100."""
    import torch
    from tierclip.train.methods.common import capped_scale

    for log_scale, value in ((math.log(400.0), 100.0), (math.log(20.0), 20.0)):
        x = torch.tensor(log_scale, requires_grad=True)
        scaled = capped_scale(x.exp())
        (3.0 * scaled).backward()
        assert scaled.item() == pytest.approx(value, rel=1e-6) and x.grad.item() == pytest.approx(3.0 * value, rel=1e-6)
