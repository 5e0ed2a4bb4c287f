"""tierclip curation: pools, scoring stages, selection, subsets."""
