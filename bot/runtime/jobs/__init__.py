"""Jobs: the runner (runner.py). What a job's body sees is the handler API's (bot/handler_api/jobs.py)."""

from bot.runtime.jobs.runner import FINISHED, JobRunner, job_view

__all__ = ["FINISHED", "JobRunner", "job_view"]
