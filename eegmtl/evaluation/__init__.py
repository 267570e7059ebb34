"""Sub-package (filled in by its module owners)."""
