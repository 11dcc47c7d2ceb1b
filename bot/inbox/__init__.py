"""The report inbox. `inbox.ReportInbox` polls, keeps the shared queue's state and answers the
commands; it builds one collaborator per concern: `source` reads the homeserver's report lists,
`posting` posts the queued notices and summaries, `delivery` knows which admin rooms take them,
`digests` posts the stats digest and the reminder, `redactions` forgets redacted excerpts. `scan`
finds new reports with a durable cursor, `views` says how a report looks, `model` holds the words
they share (kinds, states, report references)."""
