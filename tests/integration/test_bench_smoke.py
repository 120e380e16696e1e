"""Every benchmark (docs/DESIGN.md §9) at a tiny size (`bench/run_all.py --smoke`): they run, and their checks hold.

Not timed: the numbers of a smoke run mean nothing; `make bench` produces the real ones.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run_all
from tests.conftest import TEST_REDIS_URL


@pytest.mark.slow
def test_every_benchmark_runs_at_a_tiny_size(tmp_path: Path, redis_client) -> None:
    assert run_all.main(["--smoke", "--redis-url", TEST_REDIS_URL, "--results", str(tmp_path)]) == 0
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in run_all.ORDER}
    assert (tmp_path / "summary.txt").read_text().count("\n") > 6

    assert results["memory"]["bytes_per_portal"] > 0
    assert results["memory"]["record_bytes_avg"] > 0

    (overhead,) = results["overhead"]["runs"]
    assert overhead["app"]["n"] == overhead["direct"]["n"] == run_all.SMOKE["overhead"]["pairs"]
    assert results["overhead"]["portal_badges"] > 0

    assert results["profile"]["in_process_badge_add"]["n"] == run_all.SMOKE["profile"]["requests_count"]
    assert Path(results["profile"]["profile_text"]).read_text()

    (reads,) = results["reads"]["runs"]
    assert reads["requests"] > 0 and reads["non_2xx"] == 0

    variants = {v["variant"]: v for v in results["ratelimit"]["variants"]}
    assert len(variants) == 6
    for variant in variants.values():
        assert variant["created"] == variant["badges"], variant
    assert variants["app"]["portal_requests"] == 1 and variants["app"]["user_503"] == 0
    assert variants["naive"]["portal_requests"] == run_all.SMOKE["ratelimit"]["badges"]

    (storm,) = results["storm"]["runs"]
    assert storm["failed_requests"] == 0 and storm["portals_lost"] == 0 and storm["refresh_failed"] == 0
    assert storm["portals_with_exactly_one_refresh"] == storm["portals"] == run_all.SMOKE["storm"]["portals"]

    isolation = results["isolation"]
    for load in ("budget", "portal_limit", "oauth_hang"):
        assert isolation[load]["reads"]["errors"] == 0, (load, isolation[load])
        assert isolation[load]["flood"]["answers"] > 0
    assert set(isolation["budget"]["flood"]["statuses"]) <= {"404", "503"}

    on_cluster = results["cluster"]
    (cluster_storm,) = on_cluster["storm"]["cluster"]["runs"]
    assert cluster_storm["failed_requests"] == 0 and cluster_storm["portals_lost"] == 0
    assert cluster_storm["portals_with_exactly_one_refresh"] == run_all.SMOKE["cluster"]["storm_sizes"]["portals"]
    assert on_cluster["reads"]["cluster"]["runs"][0]["non_2xx"] == 0
    assert on_cluster["storm"]["seconds_ratio"] > 0 and on_cluster["reads"]["throughput_ratio"] > 0
