"""Figures and their renderings: the program report and the cohort summary.

Figures from bulk-read rows (`figures`); the cohort's summary (`summary`); the roll-up per objective both show
(`objectives`); table, CSV, JSON and HTML renderings (`render`, with the page's Jinja2 template in `templates/`).

May import: `engine.program`, `engine.store`, `engine.domain`, and `engine.reporting` itself.
"""
