"""Use cases by aggregate, one transaction each; the clock is a parameter.

Workflows and `sojourn init` (`workflows`); people (`people`); creating, listing and showing assignments
(`assignments`); creating them from CSV (`imports`); moving between stages (`advance`); tasks (`tasks`); contacts
(`contacts`); the development plan (`plans`); the objectives its goals are aligned to (`objectives`); competency
baselines and growth (`competencies`); the overlap guard of creation (`overlaps`); moving assignments to a newer
workflow version (`migration`); gathering informational notices into digests (`digests`); check-ins and the pulse
(`checkins`); outcomes (`outcomes`); mid-assignment changes (`changes`); the audit trail (`audit`, `audit_rows`); a
person's data (`privacy`); backups (`backup`); and what they share: an assignment's record loaded in bulk (`records`),
the transaction helper (`transactions`), the logger (`logging`).

May import: `engine.store`, `engine.domain`, and `engine.program` itself.
"""
