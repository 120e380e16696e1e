"""fast_bitrix24 importing badges, for bench/import_bench.py; runs in the peers' own venv (.peers-venv).

It never imports b24app: the benchmark starts it as `.peers-venv/bin/python bench/fast_bitrix24_import.py`
with a JSON config on stdin (`webhook`, `count`, `prefix`) and reads one JSON line from stdout:
`{"version", "seconds", "results", "error"}`. The library is used as its users call it:
`Bitrix(webhook).call("crm.activity.badge.add", items)`, which sends the items through `batch`, 50 per
request, under its own default throttle (a pool of 50 requests refilled at 2 per second).
"""
from __future__ import annotations

import json
import sys
import time


def main() -> int:
    config = json.load(sys.stdin)
    from fast_bitrix24 import Bitrix
    from fast_bitrix24.__version__ import __version__

    items = [{"code": f"{config['prefix']}{i}", "title": f"Imported {i}", "value": str(i), "type": "primary"}
             for i in range(int(config["count"]))]
    bitrix = Bitrix(config["webhook"], verbose=False)
    started = time.perf_counter()
    error = ""
    results = 0
    try:
        answer = bitrix.call("crm.activity.badge.add", items)
        results = len(answer) if isinstance(answer, (list, tuple, dict)) else 0
    except Exception as exc:  # reported, not raised: the comparison goes on
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = time.perf_counter() - started
    print(json.dumps({"version": __version__, "seconds": round(seconds, 3), "results": results, "error": error}),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
