"""Background jobs (b24app/jobs.py): one portal's burst does not hold back the others."""
from __future__ import annotations

import threading
import time

import pytest

from b24app.jobs import JobQueueFull, Jobs


def test_portals_take_turns_whatever_their_backlog() -> None:
    gate = threading.Event()
    order: list[str] = []
    jobs = Jobs(workers=1)
    jobs.submit("gate", gate.wait)  # holds the only worker while the queues fill
    for n in range(50):
        jobs.submit("busy", lambda n=n: order.append(f"busy{n}"))
    jobs.submit("quiet", lambda: order.append("quiet"))
    gate.set()
    assert jobs.wait(10)
    assert order.index("quiet") <= 1, order[:5]
    assert [o for o in order if o.startswith("busy")] == [f"busy{n}" for n in range(50)], "FIFO per portal"
    jobs.shutdown()


def test_a_failing_job_does_not_stop_the_worker() -> None:
    done: list[int] = []
    jobs = Jobs(workers=1)
    jobs.submit("m1", lambda: 1 / 0)
    jobs.submit("m1", lambda: done.append(1))
    assert jobs.wait(10)
    assert done == [1]
    jobs.shutdown()


def test_the_queue_is_bounded_and_closes_on_shutdown() -> None:
    gate = threading.Event()
    jobs = Jobs(workers=1, max_queued=2)
    jobs.submit("m1", gate.wait)
    assert jobs.wait(0.05) is False, "still running"
    jobs.submit("m1", lambda: None)
    jobs.submit("m2", lambda: None)
    with pytest.raises(JobQueueFull):
        jobs.submit("m3", lambda: None)
    gate.set()
    jobs.shutdown()
    with pytest.raises(JobQueueFull):
        jobs.submit("m1", lambda: None)


def test_an_outage_is_one_log_line_and_a_bug_keeps_its_traceback(caplog) -> None:
    class Down(Exception):
        pass

    jobs = Jobs(workers=1, outages=(Down,))

    def outage() -> None:
        raise Down("redis: connection refused")

    def bug() -> None:
        raise KeyError("oops")
    with caplog.at_level("WARNING", logger="b24app.jobs"):
        jobs.submit("a", outage)
        jobs.submit("a", bug)
        assert jobs.wait(5)
    outage_record, bug_record = caplog.records
    assert (outage_record.levelname, outage_record.exc_info) == ("WARNING", None)
    assert outage_record.error == "Down: redis: connection refused"
    assert bug_record.levelname == "ERROR", "log.exception: the traceback goes with it"
    jobs.shutdown()


def test_a_burst_of_debounced_calls_runs_once_after_the_last() -> None:
    runs: list[str] = []
    jobs = Jobs(workers=1)
    for n in range(20):
        jobs.debounce("m1", "register", 0.2, lambda n=n: runs.append(f"m1-{n}"))
    jobs.debounce("m2", "register", 0.2, lambda: runs.append("m2"))
    assert runs == [], "nothing before the quiet period"
    assert jobs.wait(5)
    assert sorted(runs) == ["m1-19", "m2"], "the last call of each portal, once"
    jobs.shutdown()


def test_shutdown_runs_what_was_delayed_at_once() -> None:
    runs: list[int] = []
    jobs = Jobs(workers=1)
    jobs.debounce("m1", "register", 3600, lambda: runs.append(1))
    jobs.shutdown(timeout=5)
    assert runs == [1]
    with pytest.raises(JobQueueFull):
        jobs.debounce("m1", "register", 1, lambda: None)


def test_changes_that_never_pause_still_run_the_job_in_bounded_time() -> None:
    runs: list[float] = []
    jobs = Jobs(workers=1)
    started = time.monotonic()
    while time.monotonic() - started < 5 and not runs:  # a call every 20 ms, more often than the delay
        jobs.debounce("m1", "register", 0.1, lambda: runs.append(time.monotonic() - started))
        time.sleep(0.02)
    assert runs, "ran although the calls never paused for 0.1 s"
    assert runs[0] < 3.0, "about MAX_DEFERRALS × delay (0.6 s) after the first call, not never"
    jobs.shutdown()


def test_a_deferral_only_wakes_the_timer_when_it_brings_a_due_time_forward() -> None:
    """A burst of catalogue changes (one per badge added) costs no thread wake-ups: only a new or earlier due
    time wakes the timer, which would otherwise sleep past it."""
    runs: list[float] = []
    jobs = Jobs(workers=2)
    wakes: list[int] = []
    real = jobs._due.notify
    jobs._due.notify = lambda n=1: (wakes.append(n), real(n))
    started = time.monotonic()
    jobs.debounce("m1", "register", 3600, lambda: runs.append(time.monotonic() - started))
    for _ in range(50):
        jobs.debounce("m1", "register", 3600, lambda: runs.append(time.monotonic() - started))
    assert len(wakes) == 1, "deferrals moved the due time later and woke nobody"
    jobs.debounce("m1", "register", 0.05, lambda: runs.append(time.monotonic() - started))
    assert jobs.wait(5)
    assert len(wakes) == 2 and len(runs) == 1 and runs[0] < 3.0, "an earlier due time is kept"
    jobs.shutdown()
