"""The Lua scripts the shared store runs: each check is one atomic round trip. Pure data.

Redis (and Valkey) run a script atomically, so a check and its write cannot interleave with
another replica's. A bucket's time stamp never goes back: a settle that lands late (it waited
out an outage) or a replica whose clock lags behind refills nothing twice. Numbers cross the
Lua boundary as strings: Redis truncates a Lua number in a reply to an integer. Keys are
passed in KEYS (never derived in the script) except session members evicted by the session
cap, which share the Agent's hash tag. Used by `statestore`.

ADMIT   KEYS  rpm, tpm, tokens-day, tokens-month, cost-day, cost-month, ticket
        ARGV  rpm limit, tpm limit, tokens-day limit, tokens-month limit, cost-day limit,
              cost-month limit, ticket ttl ms (the Agent's: framed once), then now, requests,
              tokens, cost, day ttl ms, month ttl ms
        (a limit of 0 means none). Refill both buckets, check every limit; when all pass, take
        the request and the reservation from each and record them under the ticket. A ticket
        already recorded (a retried call whose first reply was lost) is admitted again without
        taking anything twice. Returns one string (one reply to parse, not eight), separated
        by spaces: admitted (1 or 0), failing kinds (comma-separated, or empty), requests
        left, tokens left, tokens-day spent, tokens-month spent, cost-day spent, cost-month
        spent.
SETTLE  KEYS  rpm, tpm, tokens-day, tokens-month, cost-day, cost-month, ticket
        ARGV  rpm limit, tpm limit, now, used tokens, used cost, release
        Swap the ticket's reservation for the real usage (release=1: the request was not
        served, so the request is given back too) and delete the ticket; a missing ticket
        (settled already, or never admitted) changes nothing, so a retried settle never
        counts twice. Returns 1 when it settled, 0 otherwise.
REMEMBER KEYS session list, session index
        ARGV  now, ttl ms, max messages, max tokens, max sessions, member, key prefix, then
              (size, role, json) per message
        Append, trim to the bounds (oldest first, never starting on a non-user message), index
        the session by last use and evict sessions beyond the cap or idle past the ttl.

Calls are framed here too, in the Redis protocol (RESP: an array of bulk strings), so that
what is the same for every call of an Agent (its limits, a caller's keys) is framed once and
reused: the hot path formats only the few numbers that change (see `Call`, `Bulks`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# The token buckets; the script defines `now` first.
_BUCKET = """
local function bucket(key, limit)
  if limit <= 0 then return nil, now end
  local v = redis.call('HMGET', key, 'l', 's')
  local level = tonumber(v[1])
  local stamp = tonumber(v[2])
  if level == nil or stamp == nil then return limit, now end
  if stamp >= now then return math.min(limit, level), stamp end
  return math.min(limit, level + (now - stamp) * limit / 60), now
end
local function store(key, limit, level, at)
  redis.call('HSET', key, 'l', tostring(level), 's', tostring(at))
  redis.call('PEXPIRE', key, math.ceil((limit - level) / limit * 60000) + 1000)
end
"""

_ADMIT = (
    "local now = tonumber(ARGV[8])"
    + _BUCKET
    + """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local requests = tonumber(ARGV[9])
local tokens = tonumber(ARGV[10])
local cost = tonumber(ARGV[11])
local rlevel, rat = bucket(KEYS[1], rpm)
local tlevel, tat = bucket(KEYS[2], tpm)
local spent = {}
for i = 3, 6 do spent[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
local function reply(admitted, failing)
  return table.concat({admitted, failing, tostring(rlevel or -1), tostring(tlevel or -1),
          tostring(spent[3]), tostring(spent[4]), tostring(spent[5]), tostring(spent[6])}, ' ')
end
if redis.call('EXISTS', KEYS[7]) == 1 then return reply(1, '') end
local failing = {}
if rlevel and rlevel < requests then table.insert(failing, 'requests') end
if tlevel and tlevel < tokens then table.insert(failing, 'tokens') end
local budgets = {{3, 'tokens_day', ARGV[3], ARGV[10], ARGV[12]},
                 {4, 'tokens_month', ARGV[4], ARGV[10], ARGV[13]},
                 {5, 'cost_day', ARGV[5], ARGV[11], ARGV[12]},
                 {6, 'cost_month', ARGV[6], ARGV[11], ARGV[13]}}
for _, b in ipairs(budgets) do
  local limit = tonumber(b[3])
  if limit > 0 and spent[b[1]] + tonumber(b[4]) > limit then table.insert(failing, b[2]) end
end
if #failing > 0 then return reply(0, table.concat(failing, ',')) end
if rlevel then rlevel = rlevel - requests; store(KEYS[1], rpm, rlevel, rat) end
if tlevel then tlevel = tlevel - tokens; store(KEYS[2], tpm, tlevel, tat) end
for _, b in ipairs(budgets) do
  if tonumber(b[3]) > 0 then
    spent[b[1]] = redis.call('INCRBY', KEYS[b[1]], b[4])
    redis.call('PEXPIRE', KEYS[b[1]], b[5])
  end
end
redis.call('HSET', KEYS[7], 'r', ARGV[9], 't', ARGV[10], 'c', ARGV[11])
redis.call('PEXPIRE', KEYS[7], ARGV[7])
return reply(1, '')
"""
)

_SETTLE = (
    "local now = tonumber(ARGV[3])"
    + _BUCKET
    + """
local held = redis.call('HMGET', KEYS[7], 'r', 't', 'c')
if not held[2] then return 0 end
redis.call('DEL', KEYS[7])
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local dtokens = tonumber(ARGV[4]) - tonumber(held[2])
local dcost = tonumber(ARGV[5]) - tonumber(held[3])
if ARGV[6] == '1' and tonumber(held[1]) > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local level, at = bucket(KEYS[1], rpm)
  store(KEYS[1], rpm, math.min(rpm, level + tonumber(held[1])), at)
end
if dtokens ~= 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  local level, at = bucket(KEYS[2], tpm)
  store(KEYS[2], tpm, math.min(tpm, level - dtokens), at)
end
for i = 3, 6 do
  local delta = dtokens
  if i >= 5 then delta = dcost end
  if delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], string.format('%d', delta))
  end
end
return 1
"""
)

_REMEMBER = """
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local max_messages = tonumber(ARGV[3])
local max_tokens = tonumber(ARGV[4])
local max_sessions = tonumber(ARGV[5])
for i = 8, #ARGV, 3 do
  redis.call('RPUSH', KEYS[1], ARGV[i] .. '\\t' .. ARGV[i + 1] .. '\\t' .. ARGV[i + 2])
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local sizes, roles, total = {}, {}, 0
for i, item in ipairs(items) do
  local size, role = string.match(item, '^(%d+)\\t([^\\t]*)\\t')
  sizes[i] = tonumber(size)
  roles[i] = role
  total = total + sizes[i]
end
local n = #items
local drop = 0
while drop < n and (n - drop > max_messages or total > max_tokens) do
  total = total - sizes[drop + 1]
  drop = drop + 1
end
while drop < n and roles[drop + 1] ~= 'user' do drop = drop + 1 end
if drop >= n then
  redis.call('DEL', KEYS[1])
else
  if drop > 0 then redis.call('LTRIM', KEYS[1], drop, -1) end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('ZADD', KEYS[2], now, ARGV[6])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl)) do
  redis.call('DEL', ARGV[7] .. member)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local extra = redis.call('ZCARD', KEYS[2]) - max_sessions
if extra > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], extra)
  for i = 1, #popped, 2 do redis.call('DEL', ARGV[7] .. popped[i]) end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return n - drop
"""


# -- framing --------------------------------------------------------------------------------

Value = bytes | str | int


def bulk(value: Value) -> bytes:
    """One argument as a RESP bulk string (an int as its decimal digits)."""
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def command(*values: Value) -> bytes:
    """A whole command, e.g. `command("LRANGE", key, 0, -1)`."""
    return b"*%d\r\n%s" % (len(values), b"".join(map(bulk, values)))


@dataclass(frozen=True, slots=True)
class Bulks:
    """A run of arguments framed once, to be reused by many calls."""

    count: int
    data: bytes

    @classmethod
    def of(cls, *values: Value) -> Bulks:
        return cls(len(values), b"".join(map(bulk, values)))


@dataclass(frozen=True, slots=True)
class Script:
    """A script and its SHA-1, by which the store runs it once it has it; `keys` and `args`
    are how many it takes when that is fixed (see the table above)."""

    name: str
    body: bytes
    keys: int = 0
    args: int = 0
    sha: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.body).hexdigest().encode())

    def load(self) -> bytes:
        """The command that gives the store this script (after a restart it has none)."""
        return command("SCRIPT", "LOAD", self.body)


@dataclass(frozen=True, slots=True)
class Call:
    """One run of a script: its keys then its arguments, already framed (`count` of them)."""

    script: Script
    keys: int
    count: int
    data: bytes

    @classmethod
    def of(cls, script: Script, keys: list[Value], args: list[Value]) -> Call:
        framed = Bulks.of(*keys, *args)
        return cls(script, len(keys), framed.count, framed.data)

    @classmethod
    def framed(cls, script: Script, data: bytes) -> Call:
        """A call of a script with a fixed arity, its keys and arguments framed by the caller."""
        return cls(script, script.keys, script.keys + script.args, data)

    def evalsha(self) -> bytes:
        return b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s%s" % (
            self.count + 3,
            self.script.sha,
            bulk(self.keys),
            self.data,
        )


ADMIT = Script("admit", _ADMIT.encode(), keys=7, args=13)
SETTLE = Script("settle", _SETTLE.encode(), keys=7, args=6)
REMEMBER = Script("remember", _REMEMBER.encode())
