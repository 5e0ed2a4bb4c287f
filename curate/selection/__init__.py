"""Selection: filter a pool into a subset, tiers, subset set operations, inspect, reshard.

- `sources`  which file (meta or a stage's sidecar) holds a column; one lazy frame of the columns a rule needs
- `config`   `FilterConfig` (frozen) and the clauses it becomes (polars expressions)
- `query`    the one lazy query: per-clause drop counts, DataComp's top-k threshold, kept uids
- `tiers`    nested top-k tiers, disjoint quality bins, equal-size draws, random controls
- `setops`   intersect / union / minus of subsets, DataComp `.npy` export and import
- `inspect_rows`   `curate inspect`'s data: a reason per row, the gallery draw, thumbnails
- `inspect_page`, `charts`   the `curate inspect` page: chart PNGs and the HTML
- `reshard`  a subset written as its own pool of WebDataset shards
- `cli`      the typer commands (filter, tiers, inspect, reshard, subset ...)
"""
