"""Getting notices out: the outbox, dispatch, the daemon, and the signed links a notice carries.

The outbox's use cases and daemon status (`outbox`); claiming rows and handing them to notifiers (`dispatch`); the
dispatcher lease and heartbeats (`leases`); the scheduler wiring (`daemon`); signed, expiring action links (`links`)
and a person's long-lived calendar feed (`feeds`); the settings that route notices to notifiers (`config`).

May import: `engine.planning`, `engine.program`, `engine.store`, `engine.domain`, `notifiers`, and `engine.delivery`
itself.
"""
