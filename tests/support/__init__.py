"""Helpers shared by the test suite and the benchmarks; plain modules that need no pytest.

- `scratch`: uniquely named scratch databases (PostgreSQL and SQLite), created and dropped.
- `cast`: the cast of test people, one per role of leadership-development, and their assignment.
- `scenarios`: builders of database states (an assignment advanced to a stage, a task overdue, a filled outbox).
- `webhook`: a threaded HTTP receiver on 127.0.0.1 that counts each Idempotency-Key it is sent.

The benchmarks under `bench/` import these as `tests.support.*`; `bench/_common.py` puts the repository root on
`sys.path` so that `python bench/NAME.py` finds them.
"""
