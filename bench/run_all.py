"""Run every benchmark of docs/DESIGN.md §9 against the app under gunicorn and the sandbox over 127.0.0.1.

`make bench` runs this at full size; `--smoke` runs each at a tiny size (the test suite does that).
Results: bench/results/<timestamp>/<benchmark>.json, summary.txt, the gunicorn logs and the profile.

Deployments: "main" (2 workers × 8 threads, B24_RATE 1000/100000 so the overhead and storm numbers measure
the app, not the portal's budget) and "limited" (2 workers, the default B24_RATE 2/50) for the rate-limit
benchmark. Both share one Redis database (flushed before and after) and one sandbox process.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cluster, import_bench, isolation, memory, overhead, ratelimit, reads, storm
from bench.harness import DEFAULT_REDIS_URL, RESULTS, App, harness, machine

FULL: dict[str, dict[str, Any]] = {
    "memory": {"portals": 100_000, "sample": 1000},
    "overhead": {"pairs": 1000, "runs": 3},
    "reads": {"seconds": 10, "runs": 3},
    "ratelimit": {"badges": 500, "processes": 4, "naive_cap": 300.0, "naive_parallel_cap": 120.0},
    "import": {"chunks": 10, "chunk": 500, "runs": 2},
    "storm": {"portals": 1000, "processes": 4, "threads": 8, "runs": 2},
    "profile": {"requests_count": 500},
    "isolation": {"seconds": 10, "flood": 150, "garbage": 20},
    "cluster": {"storm_sizes": {"portals": 1000, "processes": 4, "threads": 8},
                "read_sizes": {"seconds": 10, "runs": 3}},
}
SMOKE: dict[str, dict[str, Any]] = {
    "memory": {"portals": 200, "sample": 20, "threads": 2},
    "overhead": {"pairs": 5, "runs": 1, "warmup": 2},
    "reads": {"seconds": 1, "runs": 1, "connections": 4, "badges": 2},
    "ratelimit": {"badges": 8, "processes": 2, "naive_cap": 30.0, "naive_parallel_cap": 30.0},
    "import": {"chunks": 2, "chunk": 30, "runs": 1},
    "storm": {"portals": 12, "processes": 4, "threads": 2, "runs": 1},
    "profile": {"requests_count": 5},
    "isolation": {"seconds": 1, "flood": 6, "garbage": 3, "slow": False},
    "cluster": {"storm_sizes": {"portals": 12, "processes": 4, "threads": 2},
                "read_sizes": {"seconds": 1, "runs": 1, "connections": 4, "badges": 2}},
}
ORDER = ("memory", "overhead", "profile", "reads", "ratelimit", "import", "storm", "isolation", "cluster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="a Redis DB the benchmark owns (flushed)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--only", nargs="*", choices=ORDER, help="run only these benchmarks")
    parser.add_argument("--results", type=Path, help="results folder (default bench/results/<timestamp>)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    chosen = [name for name in ORDER if not args.only or name in args.only]
    results_dir = args.results or RESULTS / time.strftime("%Y%m%d-%H%M%S")
    lines = [f"machine: {machine()}"]
    everything: dict[str, Any] = {"machine": machine(), "smoke": args.smoke}
    with harness(args.redis_url, results_dir) as h:
        main_app = h.start_app("main", port=h.app_port, workers=2, threads=8, B24_RATE="1000/100000")
        floor = h.start_floor("floor", workers=2, threads=8, B24_RATE="1000/100000")
        limited: list[App] = []

        def limited_app() -> App:
            """The deployment with the default portal budget (B24_RATE 2/50), started once when needed."""
            if not limited:
                limited.append(h.start_app("limited", workers=2, threads=8, B24_RATE="2/50"))
            return limited[0]
        for name in chosen:
            started = time.perf_counter()
            if name == "memory":
                result = memory.run(h, **sizes[name])
                lines += memory.summary(result)
            elif name == "overhead":
                result = overhead.run(h, main_app, floor, **sizes[name])
                lines += overhead.summary(result)
            elif name == "profile":
                from bench import profile_hot_path

                result = profile_hot_path.run(h, **sizes[name])
                lines.append(f"profile: in-process badge add {result['in_process_badge_add']}; "
                             f"see {result['profile_text']}")
            elif name == "reads":
                result = reads.run(h, main_app, floor, **sizes[name])
                lines += reads.summary(result)
            elif name == "ratelimit":
                result = ratelimit.run(h, limited_app(), **sizes[name])
                lines += ratelimit.summary(result)
            elif name == "import":
                result = import_bench.run(h, limited_app(), **sizes[name])
                lines += import_bench.summary(result)
            elif name == "storm":
                result = storm.run(h, main_app, **sizes[name])
                lines += storm.summary(result)
            elif name == "isolation":
                result = isolation.run(h, **sizes[name])
                lines += isolation.summary(result)
            else:
                result = cluster.run(h, main_app, floor, **sizes[name])
                lines += cluster.summary(result)
            result["wall_seconds"] = round(time.perf_counter() - started, 1)
            everything[name] = result
            h.write(name, result)
            print(f"[{name}] done in {result['wall_seconds']} s", flush=True)
        (h.results / "summary.txt").write_text("\n".join(lines) + "\n")
        h.write("all", everything)
        print("\n".join(lines))
        print(f"results: {h.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
