"""Scoring machinery: the stage runner, its engines (local process pool, Ray) and the `curate score` command."""
