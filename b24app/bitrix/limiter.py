"""Per-portal Bitrix24 limits, shared by every worker and host through Redis.

Bitrix24 counts requests per portal (a leaky bucket: +1 per HTTP request, draining `rps` per second,
503 QUERY_LIMIT_EXCEEDED above `burst`) and execution time per (app, method) (480 s per sliding
10 minutes, 429 OPERATION_TIME_LIMIT). Both limits are portal-side and global, so an in-process limiter
(what every SDK ships) lets N workers send N times too much. Here all state lives in Redis, every decision
is one atomic Lua call, and Redis `TIME` is the only clock, so hosts with skewed clocks still agree.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from ..errors import RateLimitTimeout
from ..observability import metrics
from ..storage import keys
from ..storage.badge_cache import lua_write_begins
from ..storage.installations import lua_usable

__all__ = ["Admission", "OperatingBudget", "RateLimitTimeout", "RateLimiter"]

# One script decides both limits before a call, in one round-trip. ARGV[1] says which it checks:
# `both`, `rate` or `operating`; KEYS are the bucket (unless `operating`), then the budget hash (unless
# `rate`).
# 1. The method's operating-time pause (see OperatingBudget): parked until `<m>:until`, or, with
#    used = `<m>:op` above the threshold s and R seconds until `<m>:reset`, R * f^2 where
#    f = min(1, (used - s) / (limit - s)). A pause reserves nothing: the caller sleeps it and asks again.
# 2. GCRA with reservations. TAT ("theoretical arrival time", µs) is when the bucket would be empty
#    again; the level at `now` is (TAT - now) / interval. A request of `cost` fits if the level after
#    adding it stays <= capacity; otherwise the caller gets the first future instant when it will fit,
#    and that slot is reserved at once (TAT advances), so concurrent waiters get distinct, ordered slots.
# 0. With ARGV[10] = i > 0, KEYS[i] is the portal's record (`RateLimiter.admit` record_key), read in the
#    same round-trip and checked first: a portal that cannot be called (storage/installations.py
#    `lua_usable`) gets no slot. With ARGV[11] = j > 0, a reserved slot marks the cache at KEYS[j] stale
#    (`marks_stale`, storage/badge_cache.py `lua_write_begins`).
# Returns {outcome, µs, tracked, record, unreadable}: outcome 0 = paused for µs (or, checking only the
# budget, free when µs = 0), 1 = slot reserved µs from now, 2 = no slot within max_wait, 3 = the portal
# cannot be called; tracked = 1 when a report of `used` >= ARGV[5] is stored (so a lower one must replace
# it); record = the record read along (nil when absent); unreadable = 1 when it is not a string (a record
# of an earlier layout: unchecked, for the caller to read its own way).
_ADMIT_LUA = """
local record, unreadable = false, 0
local ri, si = tonumber(ARGV[10] or '0'), tonumber(ARGV[11] or '0')
if ri > 0 then
  record = redis.pcall('GET', KEYS[ri])
  if type(record) == 'table' then record, unreadable = false, 1
  elseif not USABLE then return {3, 0, 0, record, 0} end
end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = now_us / 1000000
local mode = ARGV[1]
local rate_key, op_key
if mode == 'operating' then op_key = KEYS[1] else rate_key = KEYS[1] end
if mode == 'both' then op_key = KEYS[2] end
local tracked = 0
local pause = 0
if op_key then
  local m = ARGV[2]
  local threshold, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
  local v = redis.call('HMGET', op_key, m .. ':op', m .. ':reset', m .. ':until')
  local used, reset, parked = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  if used and used >= tonumber(ARGV[5]) then tracked = 1 end
  if parked and parked > now then pause = parked - now end
  if used and reset and reset > now and used > threshold then
    local f = math.min(1, (used - threshold) / (limit - threshold))
    pause = math.max(pause, (reset - now) * f * f)
  end
end
if pause > 0 or not rate_key then return {0, math.ceil(pause * 1000000), tracked, record, unreadable} end
local interval = tonumber(ARGV[6])
local capacity = tonumber(ARGV[7])
local cost = tonumber(ARGV[8])
local max_wait = tonumber(ARGV[9])
local tat = tonumber(redis.call('GET', rate_key) or '0')
if tat < now_us then tat = now_us end
local new_tat = tat + cost * interval
local delay = new_tat - capacity * interval - now_us
if delay < 0 then delay = 0 end
if delay > max_wait then return {2, math.ceil(delay), tracked, record, unreadable} end
new_tat = math.ceil(new_tat)
redis.call('SET', rate_key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now_us) / 1000) + 1000)
if si > 0 then MARK end
return {1, math.ceil(delay), tracked, record, unreadable}
""".replace("USABLE", lua_usable("KEYS[ri]")).replace("MARK", lua_write_begins("KEYS[si]", "now_us / 1000"))
_NO_BUDGET_ARGS = ["", "0", "1", "0"]


@dataclass(frozen=True)
class Admission:
    """What the limits decided before one portal call.

    `waited`: seconds slept for a rate-limit slot (the call may go now). `paused`: seconds the method must
    wait for its operating-time budget first (nothing reserved; sleep, then ask again without the
    budget). `tracked`: a significant operating-time report is stored for the method, so the call's own
    report must be recorded even when it is small (it replaces the stale one). `record_read`: the portal's
    record was read in the same round-trip, and `record` is what is stored (None: nothing); `callable`
    False: it says the portal cannot be called, and nothing was reserved.
    """

    waited: float = 0.0
    paused: float = 0.0
    tracked: bool = False
    record_read: bool = False
    record: bytes | None = None
    callable: bool = True


# Fields of the per-portal hash: "<method>:op", "<method>:reset", "<method>:until" (unix seconds).
# The portal answered QUERY_LIMIT_EXCEEDED: its bucket is full whatever ours says (another app, another
# host, a clock ahead of ours). Mark ours full too, so that no process sends more until it drained.
# ARGV: interval (µs), capacity.
_SATURATE_LUA = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local full = now_us + tonumber(ARGV[2]) * tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat >= full then return 0 end
full = math.ceil(full)
redis.call('SET', KEYS[1], string.format('%.0f', full), 'PX', math.ceil((full - now_us) / 1000) + 1000)
return 1
"""

_RECORD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local reset = tonumber(ARGV[3])
if not reset then reset = now + tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1] .. ':op', ARGV[2], ARGV[1] .. ':reset', string.format('%.3f', reset))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

_BLOCKED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local m = ARGV[1]
local target = tonumber(ARGV[2]) or tonumber(redis.call('HGET', KEYS[1], m .. ':reset')) or 0
target = math.min(math.max(target, now + tonumber(ARGV[3])), now + tonumber(ARGV[4]))
local current = tonumber(redis.call('HGET', KEYS[1], m .. ':until')) or 0
if current > target then target = current end
redis.call('HSET', KEYS[1], m .. ':until', string.format('%.3f', target))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return string.format('%.3f', target - now)
"""


# How far ahead a process trusts its own "no slot before" knowledge (see RateLimiter.admit), and how much
# earlier than the reported slot it takes it to be (the report is a round-trip old when it arrives).
NO_SLOT_HORIZON = 5.0
NO_SLOT_SLACK = 0.05


class RateLimiter:
    """A leaky bucket per portal, shared through Redis, that makes callers wait instead of collecting 503s.

    Safety margin: we admit at most `burst - 1` at once (never less than 1). Our schedule is computed on
    the Redis clock at reservation time, while the portal measures arrivals on its own clock after network
    and scheduling jitter; two of our requests one interval apart can arrive closer together, so the
    portal may see its bucket up to one request fuller than we computed. One request of headroom absorbs
    up to 1/rps seconds of jitter and also covers the docs' ambiguity about "over X" vs "at X". The drain
    rate is not reduced: jitter does not accumulate, so steady throughput stays at the full `rps`.
    """

    def __init__(
        self,
        redis: redis.Redis,
        rps: float,
        burst: int,
        *,
        max_wait: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check_rate(rps, burst)
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self._redis = redis
        self.rate = (float(rps), int(burst))
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        # (portal, rps, burst) → the process's clock before which the bucket has no slot for one request.
        self._no_slot_before: dict[tuple[str, float, int], float] = {}
        # portal → (the portal's refusals in a row, when the last came), see `saturate`.
        self._refusals: dict[str, tuple[int, float]] = {}
        self._script = redis.register_script(_ADMIT_LUA)
        self._saturate = redis.register_script(_SATURATE_LUA)

    @staticmethod
    def capacity(burst: int) -> int:
        """How many requests we admit at once for a portal bucket of `burst` (see the class docstring)."""
        return max(1, burst - 1)

    def acquire(
        self,
        member_id: str,
        cost: int = 1,
        *,
        rate: tuple[float, int] | None = None,
        max_wait: float | None = None,
    ) -> float:
        """Block until `cost` requests may go to the portal now; return the seconds waited.

        `rate` overrides (rps, burst) for this portal (Enterprise: (5, 250)); a `batch` costs 1.
        Raises RateLimitTimeout, reserving nothing, when the wait would exceed `max_wait`.
        One Redis round-trip; after a reservation the caller just sleeps, it never polls again.
        """
        return self.admit(member_id, cost, rate=rate, max_wait=max_wait).waited

    def admit(
        self,
        member_id: str,
        cost: int = 1,
        *,
        rate: tuple[float, int] | None = None,
        max_wait: float | None = None,
        budget: OperatingBudget | None = None,
        method: str = "",
        record_key: str | None = None,
        marks_stale: str | None = None,
    ) -> Admission:
        """`acquire`, checking first, in the same round-trip, `method`'s operating-time budget.

        A paused method comes back as `Admission(paused=...)` with no slot reserved. With `record_key` (the
        portal's record, storage/installations.py) the record comes back in the same round-trip, and a
        portal that cannot be called gets `Admission(callable=False)` and no slot: a caller that needs the
        record for its call reads it here rather than in a round-trip of its own before. `marks_stale`: a
        cache of the portal's (same hash slot) that a reserved slot marks stale, for a write.

        A refusal tells when the next slot is; a bucket's schedule only moves later (reservations and
        `saturate` push it, nothing pulls it back), so until then this process refuses callers who cannot
        wait that long without asking Redis: a flood of one portal's callers past their share of threads
        (bitrix/bulkhead.py) costs no round-trip each. Trusted at most NO_SLOT_HORIZON ahead, which bounds
        the one exception, a bucket deleted meanwhile (uninstall, a flushed or restarted Redis).
        """
        rps, burst = rate if rate is not None else self.rate
        self._check_rate(rps, burst)
        capacity = self.capacity(burst)
        if not 1 <= cost <= capacity:
            raise ValueError(f"cost must be between 1 and {capacity} for a burst of {burst}, got {cost}")
        limit = self.max_wait if max_wait is None else max_wait
        known = (member_id, float(rps), int(burst))
        self._refuse_known(known, limit)
        if budget is not None:
            mode, script_keys = "both", [keys.rate(member_id), keys.operating(member_id)]
            budget_args = budget.script_args(method)
        else:
            mode, script_keys, budget_args = "rate", [keys.rate(member_id)], _NO_BUDGET_ARGS
        extra = [key for key in (record_key, marks_stale) if key is not None]
        outcome, micros, tracked, record, unreadable = self._script(
            keys=[*script_keys, *extra],
            args=[mode, *budget_args, repr(1_000_000.0 / rps), capacity, cost, int(limit * 1_000_000),
                  len(script_keys) + 1 if record_key is not None else 0,
                  len(script_keys) + len(extra) if marks_stale is not None else 0],
        )
        seconds = int(micros) / 1_000_000
        read = record_key is not None and not int(unreadable)
        if int(outcome) == 3:
            return Admission(record_read=True, record=record, callable=False)
        if int(outcome) == 0:
            metrics.limiter_decision("paused")
            return Admission(paused=seconds, tracked=bool(int(tracked)), record_read=read, record=record)
        if int(outcome) == 2:
            metrics.limiter_decision("timeout")
            self._remember_no_slot(known, seconds - (cost - 1) / rps)
            raise RateLimitTimeout(self._come_back_in(member_id, seconds, rps, burst), member_id)
        metrics.limiter_decision("waited" if seconds > 0 else "immediate")
        if seconds > 0:
            metrics.limiter_wait("rate", seconds)
            self._sleep(seconds)
        return Admission(waited=seconds, tracked=bool(int(tracked)), record_read=read, record=record)

    def refuse_if_known_full(self, member_id: str) -> None:
        """Raise RateLimitTimeout, without a round-trip, when this process knows that the portal's bucket
        (at the limiter's own rate) has no slot now: a caller who cannot wait learns it before anything
        else is read for it (bitrix/client.py `PortalClients.portal`)."""
        rps, burst = self.rate
        self._refuse_known((member_id, rps, burst), 0.0)

    def _refuse_known(self, known: tuple[str, float, int], limit: float) -> None:
        ahead = self._no_slot_before.get(known, 0.0) - self._clock()
        if ahead > limit:
            metrics.limiter_decision("timeout")
            member_id, rps, burst = known
            raise RateLimitTimeout(self._come_back_in(member_id, ahead, rps, burst), member_id)

    def saturate(self, member_id: str, *, rate: tuple[float, int] | None = None) -> None:
        """The portal says its bucket is full (QUERY_LIMIT_EXCEEDED): ours is full too from now on, so every
        process waits for capacity (or, past its share, answers 503) instead of asking the portal again.

        Our bucket then frees a slot one interval later, which is right when we alone filled the portal's.
        When the portal keeps refusing, something else (another app, an integration) fills it, and telling
        the refused to come back in a second only brings them back to be refused again: each refusal in a
        row, with no success between (`relieved`), doubles how long refused callers are told to stay away —
        1, 2, 4 … seconds, at most the time a full bucket takes to drain.
        """
        rps, burst = rate if rate is not None else self.rate
        self._saturate(keys=[keys.rate(member_id)], args=[repr(1_000_000.0 / rps), self.capacity(burst)])
        self._remember_no_slot((member_id, float(rps), int(burst)), 1 / rps)  # full now: one interval away
        now = self._clock()
        count, last = self._refusals.get(member_id, (0, now))
        if now - last > self.capacity(burst) / rps:
            count = 0  # the last refusal was a whole drain ago: this is a new episode
        if len(self._refusals) >= 4096:
            self._refusals.clear()
        self._refusals[member_id] = (count + 1, now)

    def relieved(self, member_id: str) -> None:
        """The portal answered a call: refused callers are told the bucket's own wait again."""
        self._refusals.pop(member_id, None)

    def _come_back_in(self, member_id: str, seconds: float, rps: float, burst: int) -> float:
        """What a refused caller is told (Retry-After): the next slot, or longer while the portal keeps refusing."""
        count, _last = self._refusals.get(member_id, (0, 0.0))
        if count < 2:
            return seconds
        return max(seconds, min(self.capacity(burst) / rps, 2.0 ** (count - 1)))

    def _remember_no_slot(self, known: tuple[str, float, int], seconds: float) -> None:
        now = self._clock()
        if len(self._no_slot_before) >= 4096:
            self._no_slot_before = {k: t for k, t in list(self._no_slot_before.items()) if t > now}
        until = now + min(seconds, NO_SLOT_HORIZON) - NO_SLOT_SLACK
        self._no_slot_before[known] = max(self._no_slot_before.get(known, 0.0), until)

    @staticmethod
    def _check_rate(rps: float, burst: int) -> None:
        if not (rps > 0 and math.isfinite(rps)) or int(burst) != burst or burst < 1:
            raise ValueError(f"rate must be (rps > 0, integer burst >= 1), got ({rps!r}, {burst!r})")


class OperatingBudget:
    """Per-(portal, method) view of Bitrix24's operating-time budget, fed by each response's `time` block.

    Bitrix24 sums execution time per method over 10 one-minute buckets; `operating_reset_at` is when the
    oldest bucket drops out. We keep the last report per method so every worker can slow down before the
    portal answers 429, and park a method after a 429 so no worker hammers it until it frees up.
    """

    _BUCKETS = 10  # the portal's window is made of 10 one-minute buckets

    def __init__(
        self,
        redis: redis.Redis,
        *,
        limit: float = 480.0,
        window: float = 600.0,
        slow_from: float = 0.8,
        min_block: float = 10.0,
    ) -> None:
        if limit <= 0 or window <= 0 or not 0 <= slow_from < 1 or min_block < 0:
            raise ValueError("need limit > 0, window > 0, 0 <= slow_from < 1, min_block >= 0")
        self._redis = redis
        self.limit = limit
        self.window = window
        self.slow_from = slow_from
        self.min_block = min_block
        self._ttl = math.ceil(window)
        self._record = redis.register_script(_RECORD_LUA)
        self._blocked = redis.register_script(_BLOCKED_LUA)
        self._check = redis.register_script(_ADMIT_LUA)

    @property
    def record_floor(self) -> float:
        """Reports below this (half the slow-down threshold) can never cause a pause, so a call need not
        store one unless it replaces a stored report at or above it (`Admission.tracked`)."""
        return self.slow_from * self.limit / 2

    def script_args(self, method: str) -> list[str]:
        return [method, repr(self.slow_from * self.limit), repr(self.limit), repr(self.record_floor)]

    def record(self, member_id: str, method: str, operating: float, reset_at: float | None) -> None:
        """Store a success response's `time.operating` / `time.operating_reset_at` for that method.

        An unknown `reset_at` is taken as one bucket (window/10) from now, the latest the oldest bucket
        can drop. Last write wins: an out-of-order response is corrected by the next one.
        """
        self._record(
            keys=[keys.operating(member_id)],
            args=[method, repr(float(operating)), "" if reset_at is None else repr(float(reset_at)),
                  self.window / self._BUCKETS, self._ttl],
        )

    def blocked(self, member_id: str, method: str, until: float | None = None) -> float:
        """Park a method after 429 OPERATION_TIME_LIMIT; return the seconds it stays parked.

        The 429 body has no timings, so `until=None` means the last recorded `operating_reset_at`.
        The park lasts at least `min_block` seconds (as the JS SDK does: a reset that frees only the
        oldest minute may not be enough), at most one window, and never shortens an existing park.
        """
        parked = self._blocked(
            keys=[keys.operating(member_id)],
            args=[method, "" if until is None else repr(float(until)), self.min_block, self.window, self._ttl],
        )
        return float(parked)

    def delay(self, member_id: str, method: str) -> float:
        """Seconds to wait before calling `method` on that portal (one Redis round-trip).

        Parked → until the park ends. Otherwise, with used = last `operating`, s = slow_from * limit and
        R = seconds until `operating_reset_at`: 0 while used <= s, else R * f**2 with
        f = min(1, (used - s) / (limit - s)). The pause grows smoothly from 0 at the threshold to the
        whole R at the limit, so the call rate, and with it the growth of `operating`, falls towards zero
        as the budget runs out: under steady load the method approaches the limit instead of crossing it.
        A report whose reset time has passed is stale (the window moved on) and gives no delay.
        `RateLimiter.admit` makes the same decision together with the rate-limit slot.
        """
        return self.check(member_id, method).paused

    def check(self, member_id: str, method: str) -> Admission:
        """`delay` as an Admission (`paused`, `tracked`), for callers without a rate limiter."""
        _outcome, micros, tracked, _value, _unreadable = self._check(keys=[keys.operating(member_id)],
                                                                     args=["operating", *self.script_args(method)])
        return Admission(paused=int(micros) / 1_000_000, tracked=bool(int(tracked)))
