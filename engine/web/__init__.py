"""`sojourn serve`: the pages where stakeholders act on their signed links; the Flask app lives in `engine.web.app`.

No SQL and no business rules: the pages call the same use cases as the command line.

May import: every package below it (`engine.delivery`, `engine.planning`, `engine.reporting`, `engine.program`,
`engine.store`, `engine.domain`).
"""
