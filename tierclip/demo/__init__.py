"""`just demo`: the whole study end to end through the public commands, on the real-image pool or the synthetic one.

It orchestrates all three parts (curate, train, analysis), so it lives here, above them: the parts never import
it. Each step is the console command a user would type, printed before it runs, so the demo doubles as the
recipe. `grids.py` holds the grids, `pools.py` the pool-building steps, `study.py` the study, `steps.py` how a
step runs, `cli.py` the command line (`python -m tierclip.demo`).
"""
