"""Ingest: turn img2dataset output, a folder of images, or DataComp metadata into a pool.

Every source yields `Record`s (or, for metadata-only DataComp pools, polars frames);
`writer.write_pool` turns them into shards with statuses, uids and a resumable layout.
"""
