"""The report inbox, in three parts: `scan` finds new reports with a durable cursor, `views` says
how a report looks, `inbox` posts notices and keeps the shared queue's state. `model` holds the
words they share (kinds, states, report references)."""
