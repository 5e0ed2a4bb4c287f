"""tierclip analysis: collect runs, fit scaling curves, write reports."""
