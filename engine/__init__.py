"""Sojourn's engine, grouped by area; each package's docstring says what lives there and what it may import.

Bottom first: `domain` < `store` < `program` < `planning`, `reporting` < `delivery` < `web`. Submodules are
imported where they are used, so the command line pays only for what a command needs.
"""
