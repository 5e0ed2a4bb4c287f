"""How big the study is: one frozen `DemoGrid` per (pool, --full) in `GRIDS`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PackagesPool:
    """`curate ingest packages`: the real-image pool, its trusted seed set and the held-out eval set."""

    sources: str = "emoji-google,emoji-twitter,openmoji,tuxpaint"
    misaligned: float = 0.3
    foreign: float = 0.1
    holdout: float = 0.2
    trusted_n: int = 1_400
    max_pixels: int = 4_000_000   # openclipart's few huge PNGs become too_large rows instead of 2 GB decodes
    image_size: int = 64


@dataclass(frozen=True)
class SynthPool:
    """`curate synth`: a noisy synthetic pool with exact ground truth, a clean seed set, an eval set."""

    pool_size: int
    seed_size: int
    image_size: int = 32
    eval_n: int = 800


@dataclass(frozen=True)
class DemoGrid:
    """The study after the pool exists.

    A filtering network trains on the seed set (`filter_samples`), scores the pool, and `fractions` tiers
    follow, one tier set per size in `sizes` (`curate tiers --equal-size`: quality without quantity). The
    headline trains every tier of the `headline_size` set at each of `budgets` with every one of `seeds`; with
    `random_control`, a uniform random draw of the top tier's size (`curate tiers --random-control`) trains at
    `control_budgets` with the same seeds. The other `sizes` add the data-size axis at `size_budget` with
    `size_seeds`. `--full` adds axes on one tier (`axis_fraction`) at `size_budget`: `arch_models` at
    `arch_sizes`, `method_models` x `methods` (and, with `noaug`, every augmented method again with its
    augmentation off), `text_models`, CLIP+Aug at half the headline size, and `natural_fractions` tiers at
    their own sizes. Every sweep is split into one `train sweep` per (subset, seed) and those run in `lanes`
    processes side by side, each with cores / `lanes` torch threads (tierclip.demo.steps.lane_plan).
    """

    pool: PackagesPool | SynthPool
    filter_samples: int
    fractions: str
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    n_boot: int
    task: str
    metric: str
    sizes: tuple[int, ...]
    headline_size: int
    random_control: bool = False
    control_budgets: tuple[int, ...] = ()
    size_budget: int | None = None
    size_seeds: tuple[int, ...] = ()
    scale: str = "cpu-small"
    model: str = "tc-rn-tiny"   # the tier study's model (the scale's)
    filter_lr: float = 5e-3
    axis_fraction: str | None = None
    arch_models: tuple[str, ...] = ()
    arch_sizes: tuple[int, ...] = ()
    method_models: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    noaug: bool = False
    text_models: tuple[str, ...] = ()
    natural_fractions: str | None = None
    natural_budgets: tuple[int, ...] = ()
    lanes: int = 2   # on 2 cores two 1-thread lanes trained the real default grid ~1.4x as fast as one 2-thread lane


# The --full grids' methods besides CLIP; each method model runs those it can train (FILIP-family: ViT towers only).
FULL_METHODS = ("clip-aug", "slip", "flip", "declip", "filip", "defilip")
ARCH_MODELS = ("tc-rn-xs", "tc-rn-s", "tc-vit-xs", "tc-vit-tiny")
TEXT_MODELS = ("tc-rn-tiny-text1", "tc-rn-tiny-text2", "tc-rn-tiny-text4", "tc-rn-tiny-text8")
ALL_SOURCES = "emoji-google,emoji-twitter,openmoji,openclipart,tuxpaint"
# The real --full grid's ViT for the methods: tc-vit-xs trained CLIP on the real pool at 328 samples/s a lane against
# tc-vit-tiny's 118, and was not worse at 10,112 seen (held-out i2t R@1 0.007 vs 0.004, seed 0; tiny at lr 5e-4:
# 0.002); with tc-vit-tiny the ViT methods alone took ~45 of the grid's ~90 minutes.
REAL_METHOD_MODELS = ("tc-rn-tiny", "tc-vit-xs")
REAL_TASK = ("heldout_retrieval", "i2t_recall_merged@1")

GRIDS = {
    ("real", False): DemoGrid(pool=PackagesPool(), filter_samples=10_000, fractions="0.3,1.0", sizes=(2_500,),
                              headline_size=2_500, budgets=(3_000, 5_000, 8_000, 12_000), seeds=(0, 1, 2),
                              random_control=True, control_budgets=(12_000,), n_boot=100, task=REAL_TASK[0],
                              metric=REAL_TASK[1]),
    ("real", True): DemoGrid(pool=PackagesPool(sources=ALL_SOURCES), filter_samples=20_000, fractions="0.2,0.4,1.0",
                             sizes=(500, 1_000, 2_000, 3_000), headline_size=2_000, budgets=(5_000, 10_000, 20_000),
                             seeds=(0, 1), random_control=True, control_budgets=(20_000,), size_budget=10_000,
                             size_seeds=(0,), n_boot=200, task=REAL_TASK[0],
                             metric=REAL_TASK[1], axis_fraction="0.4", arch_models=ARCH_MODELS, arch_sizes=(500, 2_000),
                             method_models=REAL_METHOD_MODELS, methods=FULL_METHODS, noaug=True,
                             text_models=TEXT_MODELS, natural_fractions="0.2,1.0", natural_budgets=(10_000, 20_000)),
    ("synth", False): DemoGrid(pool=SynthPool(pool_size=10_000, seed_size=2_000), filter_samples=36_000,
                               sizes=(350, 700, 1_400, 2_800), fractions="0.3,1.0", headline_size=1_400,
                               budgets=(3_000, 6_000, 12_000), seeds=(0, 1), size_budget=6_000, size_seeds=(0,), n_boot=100,
                               task="shape", metric="top1"),
    ("synth", True): DemoGrid(pool=SynthPool(pool_size=20_000, seed_size=3_000), filter_samples=60_000,
                              sizes=(500, 1_000, 2_000, 3_600), fractions="0.2,0.4,1.0", headline_size=2_000,
                              budgets=(5_000, 10_000, 20_000), seeds=(0, 1), size_budget=10_000, size_seeds=(0, 1),
                              n_boot=200, task="shape", metric="top1", axis_fraction="0.4", arch_models=ARCH_MODELS,
                              arch_sizes=(500, 2_000), method_models=("tc-rn-tiny", "tc-vit-tiny"),
                              methods=("clip-aug", "slip", "declip", "filip", "defilip"), text_models=TEXT_MODELS,
                              natural_fractions="0.2,1.0", natural_budgets=(10_000, 20_000)),
}
