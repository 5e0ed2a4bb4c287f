"""tierclip training: CLIP-family methods on pool subsets with open_clip."""
