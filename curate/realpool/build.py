"""`curate ingest packages`: a real-image pool, its trusted seed set and its held-out eval set, from packages.

    read every source's items          (emoji.py, clipart.py, tuxpaint.py)
    hold out concepts, draw the seed   (split.py)
    caption the rows, some in another language, then rotate a share of captions   (captions.py, noise.py)
    write the pool and the seed set    (the shared ingest writer: curate/ingest/run.py)
    write the eval set                 (evalsets.py)
    write OUT/packages.json            (the recipe, the packages, per-source counts, licences and attributions)

Random draws come from `SeedSequence([seed, STREAM])`, one stream per purpose, and items are read in a
fixed order (sorted files, the packages' own json order), so the same packages and options give the
same pool bytes (pool.json's `created` aside, as for every ingest).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.ingest.checks import ImageOptions
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.ingest.source import Source
from tierclip.curate.realpool import captions, emoji, noise, packages, split
from tierclip.curate.realpool.clipart import clipart_items
from tierclip.curate.realpool.evalsets import write_heldout_evalset
from tierclip.curate.realpool.records import META_SCHEMA, Row, records
from tierclip.curate.realpool.tuxpaint import tuxpaint_items

# Every source: how its items are read (emoji sources share the text tables).
READERS = {
    "emoji-google": lambda text: emoji.datasource_items("emoji-google", text),
    "emoji-twitter": lambda text: emoji.datasource_items("emoji-twitter", text),
    "openmoji": emoji.openmoji_items,
    "openclipart": lambda text: clipart_items(),
    "tuxpaint": lambda text: tuxpaint_items(),
}
SOURCES = tuple(READERS)
EMOJI_SOURCES = ("emoji-google", "emoji-twitter", "openmoji")
SPLIT_STREAM, CAPTION_STREAM, ROTATE_STREAM, EVAL_STREAM, ORDER_STREAM = range(5)
RECIPE_FILE = "packages.json"


@dataclass(frozen=True)
class PackagesConfig:
    out: Path
    sources: tuple[str, ...] = SOURCES
    sources_given: bool = False      # named by the user: a missing package is an error, never skipped
    holdout: float = 0.2
    misaligned: float = 0.3
    foreign: float = 0.1
    trusted_n: int = 1_400
    trusted_out: Path | None = None  # default OUT/trusted
    eval_out: Path | None = None     # default OUT/eval
    zeroshot_min: int = 20
    seed: int = 0
    shard_size: int = 10_000
    name: str | None = None
    images: ImageOptions = field(default_factory=lambda: ImageOptions(image_size=64))

    def __post_init__(self):
        unknown = [s for s in self.sources if s not in READERS]
        if unknown or not self.sources:
            raise UserError(f"--sources {','.join(self.sources)}: choose from {', '.join(SOURCES)}")
        for flag, value, low, high in (("--holdout", self.holdout, 0, 0.9), ("--misaligned", self.misaligned, 0, 1),
                                       ("--foreign", self.foreign, 0, 1)):
            if not low <= value <= high:
                raise UserError(f"{flag} {value}: must be between {low} and {high}")
        if self.trusted_n < 0 or self.zeroshot_min < 1:
            raise UserError(f"--trusted-n {self.trusted_n} / --zeroshot-min {self.zeroshot_min}: must be >= 0 / >= 1")

    @property
    def trusted_dir(self) -> Path:
        return self.trusted_out or self.out / "trusted"

    @property
    def eval_dir(self) -> Path:
        return self.eval_out or self.out / "eval"

    def recipe(self) -> dict:
        """What decides the pool's content (ingest.json refuses a resume with another recipe)."""
        return {"source": "packages", "sources": list(self.sources), "holdout": self.holdout, "misaligned": self.misaligned,
                "foreign": self.foreign, "trusted_n": self.trusted_n, "zeroshot_min": self.zeroshot_min, "seed": self.seed,
                "packages": [p.spec for p in packages.read_packages() if set(p.sources) & set(self.sources)]}


def available_sources(cfg: PackagesConfig) -> tuple[str, ...]:
    """The sources to read: all named ones; of the default list, a Debian source whose package is missing is
    skipped with one line (an npm package is always required: `just setup-packages` fetches it without root)."""
    chosen = []
    for source in cfg.sources:
        missing = [p for p in packages.packages_of(source) if not packages.is_present(p)]
        if missing and not cfg.sources_given and all(p.kind == "debian" for p in missing):
            print(f"skipping source {source}: Debian package {', '.join(p.name for p in missing)} not installed "
                  f"({', '.join(str(packages.package_root(p)) for p in missing)} missing); {packages.SETUP_HINT} as root")
            continue
        for package in missing:
            packages.require(package)
        chosen.append(source)
    return tuple(chosen)


def build_pool(cfg: PackagesConfig) -> dict:
    """Write the pool, the trusted seed set and the eval set; return what packages.json records."""
    sources = available_sources(cfg)
    text = emoji.read_text() if set(sources) & set(EMOJI_SOURCES) else None
    items = [item for source in sources for item in READERS[source](text)]
    parts = split.split_items(items, cfg.holdout, cfg.trusted_n, _rng(cfg.seed, SPLIT_STREAM))
    pool_rows, kept = _pool_rows(parts.train, cfg)
    recipe = {**cfg.recipe(), "sources": list(sources)}
    pool_report = run_ingest(_source(recipe, pool_rows, cfg), cfg.out, cfg.shard_size, cfg.name, cfg.images)
    trusted_rng = _rng(cfg.seed, CAPTION_STREAM, 1)
    trusted_rows = [Row(item, captions.english(item, trusted_rng)) for item in parts.trusted]
    run_ingest(_source({**recipe, "part": "trusted"}, trusted_rows, cfg), cfg.trusted_dir, cfg.shard_size,
               f"{cfg.name or cfg.out.resolve().name}-trusted", cfg.images)
    notes = _write_evalset(cfg, parts)
    summary = _summary(recipe, parts, pool_rows, kept, notes)
    atomic.write_json(cfg.out / RECIPE_FILE, summary)
    return {**summary, "report": pool_report}


def _pool_rows(items: list, cfg: PackagesConfig) -> tuple[list[Row], int]:
    """The pool's rows in a shuffled order (sources mixed across shards), captioned, a share rotated."""
    order = _rng(cfg.seed, ORDER_STREAM).permutation(len(items))
    items = [items[i] for i in order]
    texts = captions.captions(items, cfg.foreign, _rng(cfg.seed, CAPTION_STREAM))
    usable = [item.path is not None for item in items]
    rotation = noise.rotate([t.text for t in texts], [item.concept for item in items], usable, cfg.misaligned,
                            _rng(cfg.seed, ROTATE_STREAM))
    rows = [Row(item, texts[i], texts[rotation.donors[i]] if i in rotation.donors else None) for i, item in enumerate(items)]
    return rows, rotation.kept


def _source(recipe: dict, rows: list[Row], cfg: PackagesConfig) -> Source:
    return Source("packages", recipe, records(rows, cfg.images.image_size), total=len(rows), meta_schema=META_SCHEMA)


def _write_evalset(cfg: PackagesConfig, parts: split.Split) -> list[str]:
    if (cfg.eval_dir / "evalset.json").is_file():
        return [f"eval set {cfg.eval_dir} already written: kept"]
    if not parts.heldout:
        return ["no eval set: no concept held out (--holdout 0, or no emoji source)"]
    return write_heldout_evalset(cfg.eval_dir, parts.heldout, cfg.images, cfg.zeroshot_min, _rng(cfg.seed, EVAL_STREAM))


def _summary(recipe: dict, parts: split.Split, rows: list[Row], kept: int, notes: list[str]) -> dict:
    by_source: dict[str, dict] = {}
    for row in rows:
        entry = by_source.setdefault(row.item.source, {"rows": 0, "license": row.item.license, "attribution": Counter()})
        entry["rows"] += 1
        entry["attribution"][row.item.attribution] += 1
    sources = {s: {**e, "attribution": [a for a, _ in e["attribution"].most_common(3)]} for s, e in sorted(by_source.items())}
    return {"recipe": recipe, "sources": sources, "concepts": parts.n_concepts, "heldout_concepts": parts.n_heldout_concepts,
            "heldout_images": len(parts.heldout), "trusted": len(parts.trusted),
            "left_out_heldout_names": dict(sorted(parts.left_out.items())),
            "misaligned": sum(r.donor is not None for r in rows), "rotation_kept": kept, "notes": notes}


def _rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *more]))
