"""Training: towers, heads, losses, optimiser, the fit loop and the export of a version."""
