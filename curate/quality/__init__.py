"""`curate quality`: precision/recall of each filter against a synthetic pool's ground truth (metrics + command)."""
