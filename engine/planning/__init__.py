"""When things are due: the planner the daemon and the forecast share, and the calendars.

Due tasks and cadences -> outbox rows, batch by batch (`planner`); the replay on a virtual clock and its Gantt chart
(`forecast`); iCalendar events and a person's calendar (`ical`, `agenda`); a migration's dry run with the notices
before and after (`migration_preview`).

May import: `engine.program`, `engine.store`, `engine.domain`, and `engine.planning` itself.
"""
