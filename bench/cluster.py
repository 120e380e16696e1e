"""The app on a 3-master Redis Cluster next to the single Redis, in the same run (docs/DESIGN.md §9).

A cluster of three redis-server processes on this machine (under the results folder), and two app
deployments on it (two gunicorn masters, 2 workers × 8 threads each, as on two hosts). Measured on both
the single Redis (the harness's "main" deployment) and the cluster, at the same sizes: the refresh storm
(on the cluster driven through both deployments at once) and cached badge-list reads; each cluster figure
is also given as a ratio to the single Redis's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from b24app.storage.connection import connect
from b24app.storage.crypto import TokenCipher
from b24app.storage.installations import RedisInstallationStore
from bench import reads, storm
from bench.harness import App, Harness
from tests.support.redis_servers import RedisCluster3


def run(h: Harness, main_app: App, floor: App, *, storm_sizes: dict[str, Any],
        read_sizes: dict[str, Any]) -> dict[str, Any]:
    cluster = RedisCluster3(Path(h.results) / "cluster")
    cluster.start()
    try:
        store = RedisInstallationStore(connect(cluster.url), TokenCipher(tuple(h.token_keys.split(","))))
        apps = [h.start_app(f"cluster-{name}", workers=2, threads=8, B24_RATE="1000/100000", REDIS_URL=cluster.url)
                for name in ("a", "b")]
        single_storm = storm.run(h, main_app, **storm_sizes)
        cluster_storm = storm.run(h, apps, store=store, **storm_sizes)
        single_reads = reads.run(h, main_app, floor, **read_sizes)
        (seeded,) = h.sandbox.call("seed_installed", 1, None)
        h.save_seeded([seeded], store)
        cluster_reads = reads.run(h, apps[0], floor, portal=seeded, **read_sizes)
        for app in apps:
            app.stop()
    finally:
        cluster.stop()
    return {"benchmark": "cluster", "masters": len(cluster.ports), "deployments": len(apps),
            "storm": {"single": single_storm, "cluster": cluster_storm,
                      "seconds_ratio": _ratio(_runs(cluster_storm, "seconds"), _runs(single_storm, "seconds"))},
            "reads": {"single": single_reads, "cluster": cluster_reads,
                      "throughput_ratio": _ratio(_runs(cluster_reads, "responses_per_second"),
                                                 _runs(single_reads, "responses_per_second"))}}


def _runs(result: dict[str, Any], field: str) -> list[float]:
    return [float(r[field]) for r in result["runs"]]


def _ratio(cluster: list[float], single: list[float]) -> float:
    return round((sum(cluster) / len(cluster)) / max(sum(single) / len(single), 1e-9), 2)


def summary(result: dict[str, Any]) -> list[str]:
    lines = [f"cluster: {result['masters']} masters, {result['deployments']} deployments, next to the single Redis"]
    lines += ["  storm on the single Redis:"] + ["  " + line for line in storm.summary(result["storm"]["single"])]
    lines += ["  storm on the cluster, through both deployments:"]
    lines += ["  " + line for line in storm.summary(result["storm"]["cluster"])]
    lines.append(f"  storm time, cluster / single: {result['storm']['seconds_ratio']}×")
    lines += ["  " + line for line in reads.summary(result["reads"]["single"])]
    lines += ["  " + line for line in reads.summary(result["reads"]["cluster"])]
    lines.append(f"  cached reads per second, cluster / single: {result['reads']['throughput_ratio']}×")
    return lines
