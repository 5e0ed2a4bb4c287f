"""Configuration of `curate synth`: sizes, seed, and the rate of each injected defect."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from tierclip.curate.errors import UserError

# Seed streams: the pool's shards, the defect labels and the eval set never share random numbers.
SHARD_STREAM, LABEL_STREAM, EVAL_STREAM = 0, 1, 2
MIN_IMAGE_SIZE = 16  # tiny images are 6-12 px; a pool image must be clearly bigger


@dataclass(frozen=True)
class DefectRates:
    """Share of the pool given each defect; a sample has at most one, the rest are clean.

    The web profile resembles a scraped pool: about two thirds of the samples
    have some defect, misaligned captions being the most common (as in
    LAION/DataComp, where a CLIP score filter removes the bulk).
    """

    misaligned: float = 0.22
    attribute_swap: float = 0.08
    boilerplate: float = 0.08
    non_english: float = 0.08
    exact_dup: float = 0.05
    near_dup: float = 0.05
    tiny: float = 0.03
    corrupt: float = 0.03
    empty_caption: float = 0.03

    @property
    def clean(self) -> float:
        return 1.0 - sum(self.as_dict().values())

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


DEFECTS = tuple(f.name for f in fields(DefectRates))
DUP_DEFECTS = ("exact_dup", "near_dup")
PROFILES = {"web": DefectRates(), "clean": DefectRates(**{name: 0.0 for name in DEFECTS})}


@dataclass(frozen=True)
class SynthConfig:
    n: int
    out: Path
    seed: int = 0
    image_size: int = 64
    shard_size: int = 1000
    profile: str = "web"
    rates: DefectRates = DefectRates()
    max_objects: int = 3
    eval_n: int = 1000
    eval_out: Path | None = None
    workers: int = 0  # 0 = one per CPU core

    @property
    def n_shards(self) -> int:
        return -(-self.n // self.shard_size)

    @property
    def eval_root(self) -> Path:
        return self.eval_out or self.out / "eval"

    @property
    def pool_name(self) -> str:
        return f"synth-{self.profile}-s{self.seed}-n{self.n}"

    def n_workers(self) -> int:
        wanted = self.workers or os.cpu_count() or 1
        return max(1, min(wanted, self.n_shards))

    def recipe(self) -> dict:
        """What determines the pool's bytes (written to POOL/synth.json; workers and eval paths excluded)."""
        return {"n": self.n, "seed": self.seed, "image_size": self.image_size, "shard_size": self.shard_size,
                "profile": self.profile, "rates": self.rates.as_dict(), "max_objects": self.max_objects}


def make_config(n: int, out: Path, profile: str = "web", rate_overrides: dict[str, float | None] | None = None,
                **options) -> SynthConfig:
    """Build and check a config: the profile's rates with any explicit `--rate-*` values on top."""
    if profile not in PROFILES:
        raise UserError(f"--profile: unknown profile {profile!r} (expected one of {', '.join(PROFILES)})")
    given = {name: value for name, value in (rate_overrides or {}).items() if value is not None}
    unknown = sorted(set(given) - set(DEFECTS))
    if unknown:
        raise UserError(f"unknown defect rate(s) {unknown} (known: {', '.join(DEFECTS)})")
    config = SynthConfig(n=n, out=Path(out), profile=profile, rates=replace(PROFILES[profile], **given), **options)
    check_config(config)
    return config


def check_config(config: SynthConfig) -> None:
    if config.n < 1:
        raise UserError(f"--n: need at least one sample, got {config.n}")
    if config.shard_size < 1:
        raise UserError(f"--shard-size: must be positive, got {config.shard_size}")
    if config.image_size < MIN_IMAGE_SIZE:
        raise UserError(f"--image-size: must be at least {MIN_IMAGE_SIZE} px, got {config.image_size}")
    if not 1 <= config.max_objects <= 3:
        raise UserError(f"--max-objects: must be 1, 2 or 3, got {config.max_objects}")
    if config.eval_n < 0:
        raise UserError(f"--eval-n: must be 0 or more, got {config.eval_n}")
    for name, rate in config.rates.as_dict().items():
        if not 0.0 <= rate <= 1.0:
            raise UserError(f"--rate-{name.replace('_', '-')}: must be between 0 and 1, got {rate}")
    if config.rates.clean < -1e-9:
        raise UserError(f"defect rates add up to {1 - config.rates.clean:.3f}; they must add up to at most 1")
    if sum(getattr(config.rates, name) for name in DUP_DEFECTS) > 0.5:
        raise UserError("--rate-exact-dup + --rate-near-dup must be at most 0.5 (each duplicate needs an original)")


def same_recipe(path: Path, config: SynthConfig) -> bool:
    return path.is_file() and json.loads(path.read_text()) == config.recipe()
