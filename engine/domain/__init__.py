"""The vocabulary and the rules, pure: no database, no clock of its own.

Notice kinds, outbox statuses and every message's text (`notices`), which of them wait for a digest (`digests`) and
which link action each carries (`link_rules`); task statuses (`tasks`); the user-error family (`errors`); checks on
typed values and the one CSV table reader (`inputs`, `csv_tables`); the workflow language and its guards
(`definition`, `pruning`, `guards`, `lifecycle`) and what changed between two versions (`workflow_diff`); calendar
arithmetic (`schedule`, `cadences`, `reminders`); one escaping rule per output format (`escape`); the base of typed
results and their one JSON form (`views`). Messages name rows through small protocols (`PersonFacts`, `TaskFacts`,
...) that the store's rows satisfy, so nothing here imports the store.

May import: the standard library, pydantic, yaml, jinja2 and matplotlib (the escaping rules of the formats they
write), and `engine.domain` itself.
"""
