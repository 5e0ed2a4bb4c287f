"""Scoring stages: one module each; the registry is the one dict below (see `curate.stages.base` for the contract)."""

from tierclip.curate.stages import basic, clip, cluster, image_dedup, lang, text_dedup

STAGES = {
    "basic": basic.STAGE,
    "lang": lang.STAGE,
    "clip": clip.STAGE,
    "text_dedup": text_dedup.STAGE,
    "image_dedup": image_dedup.STAGE,
    "cluster": cluster.STAGE,
}
