"""The reporter: reports written in order, and what goes with a job that is gone."""

from __future__ import annotations

import pytest
import redis

from common import live
from common.config import Settings
from common.db import Database
from common.ffmpeg.outcome import Outcome
from common.lifecycle import reports
from common.lifecycle.service import Farm
from worker.job import Job
from worker.reporter import Reporter


@pytest.mark.parametrize(
    ("report", "kept"),
    [
        (reports.Ended(Outcome.STOPPED, exit_code=0), False),
        (reports.Failed(error="e", stderr_tail=[], exit_code=1, reason="r"), False),
        (reports.Ended(Outcome.FENCED, exit_code=None), True),  # Redis is likely out of reach
        (reports.Running(), True),
    ],
)
def test_the_statistics_of_a_job_gone_for_good_go_once_its_report_is_written(
    committing_db: Database,
    redis_client: redis.Redis,
    settings: Settings,
    report: reports.Report,
    kept: bool,
) -> None:
    stats = live.RestreamStats(restream_id="r1", node="n", generation=1, state="running")
    live.write_stats(redis_client, [stats], ttl_s=30)
    reporter = Reporter(committing_db, Farm(redis_client, settings), "n")
    reporter.start()
    try:
        reporter.report(Job("r1", 1, []), report)
        reporter.flush()
    finally:
        reporter.close()
    assert ("r1" in live.read_stats(redis_client, ["r1"])) is kept
