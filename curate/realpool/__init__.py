"""The real-image pool from packages (`curate ingest packages`): emoji sets, openclipart, Tux Paint stamps.

`packages.py` finds the packages set-up fetched; `emoji.py`, `clipart.py`, `tuxpaint.py` read them into
`items.Item`s; `split.py` holds concepts out and draws the trusted seed set; `captions.py` and `noise.py`
caption the rows and rotate a share of captions; `records.py` turns rows into the ingest writer's records;
`evalsets.py` writes the held-out eval set; `build.py` runs it all.
"""
