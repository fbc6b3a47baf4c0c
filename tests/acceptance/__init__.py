"""Acceptance tests: the installed `sojourn` command in subprocesses."""
