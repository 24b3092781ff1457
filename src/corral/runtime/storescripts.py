"""The Lua scripts the shared store runs: each check is one atomic round trip. Pure data.

Redis (and Valkey) run a script atomically, so a check and its write cannot interleave with
another replica's. Numbers cross the Lua boundary as strings: Redis truncates a Lua number in
a reply to an integer. Keys are passed in KEYS (never derived in the script) except session
members evicted by the session cap, which share the Agent's hash tag. Used by `statestore`.

ADMIT   KEYS  rpm, tpm, tokens-day, tokens-month, cost-day, cost-month, ticket
        ARGV  now, rpm limit, tpm limit, requests, tokens, tokens-day limit, tokens-month limit,
              cost, cost-day limit, cost-month limit, day ttl ms, month ttl ms, ticket ttl ms
        (a limit of 0 means none). Refill both buckets, check every limit; when all pass, take
        the request and the reservation from each and record them under the ticket. A ticket
        already recorded (a retried call whose first reply was lost) is admitted again without
        taking anything twice. Returns {admitted, failing kinds (comma-separated), requests
        left, tokens left, tokens-day spent, tokens-month spent, cost-day spent, cost-month
        spent}.
SETTLE  KEYS  rpm, tpm, tokens-day, tokens-month, cost-day, cost-month, ticket
        ARGV  now, rpm limit, tpm limit, used tokens, used cost, release
        Swap the ticket's reservation for the real usage (release=1: the request was not
        served, so the request is given back too) and delete the ticket; a missing ticket
        (settled already, or never admitted) changes nothing, so a retried settle never
        counts twice. Returns 1 when it settled, 0 otherwise.
REMEMBER KEYS session list, session index
        ARGV  now, ttl ms, max messages, max tokens, max sessions, member, key prefix, then
              (size, role, json) per message
        Append, trim to the bounds (oldest first, never starting on a non-user message), index
        the session by last use and evict sessions beyond the cap or idle past the ttl.
"""

from __future__ import annotations

_BUCKET = """
local now = tonumber(ARGV[1])
local function bucket(key, limit)
  if limit <= 0 then return nil end
  local v = redis.call('HMGET', key, 'l', 's')
  local level = tonumber(v[1])
  local stamp = tonumber(v[2])
  if level == nil or stamp == nil then return limit end
  local elapsed = now - stamp
  if elapsed < 0 then elapsed = 0 end
  return math.min(limit, level + elapsed * limit / 60)
end
local function store(key, limit, level)
  redis.call('HSET', key, 'l', tostring(level), 's', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((limit - level) / limit * 60000) + 1000)
end
"""

ADMIT = (
    _BUCKET
    + """
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local requests = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
local cost = tonumber(ARGV[8])
local rlevel = bucket(KEYS[1], rpm)
local tlevel = bucket(KEYS[2], tpm)
local spent = {}
for i = 3, 6 do spent[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
local function reply(admitted, failing)
  return {admitted, failing, tostring(rlevel or -1), tostring(tlevel or -1),
          tostring(spent[3]), tostring(spent[4]), tostring(spent[5]), tostring(spent[6])}
end
if redis.call('EXISTS', KEYS[7]) == 1 then return reply(1, '') end
local failing = {}
if rlevel and rlevel < requests then table.insert(failing, 'requests') end
if tlevel and tlevel < tokens then table.insert(failing, 'tokens') end
local budgets = {{3, 'tokens_day', ARGV[6], ARGV[5], ARGV[11]},
                 {4, 'tokens_month', ARGV[7], ARGV[5], ARGV[12]},
                 {5, 'cost_day', ARGV[9], ARGV[8], ARGV[11]},
                 {6, 'cost_month', ARGV[10], ARGV[8], ARGV[12]}}
for _, b in ipairs(budgets) do
  local limit = tonumber(b[3])
  if limit > 0 and spent[b[1]] + tonumber(b[4]) > limit then table.insert(failing, b[2]) end
end
if #failing > 0 then return reply(0, table.concat(failing, ',')) end
if rlevel then rlevel = rlevel - requests; store(KEYS[1], rpm, rlevel) end
if tlevel then tlevel = tlevel - tokens; store(KEYS[2], tpm, tlevel) end
for _, b in ipairs(budgets) do
  if tonumber(b[3]) > 0 then
    spent[b[1]] = redis.call('INCRBY', KEYS[b[1]], b[4])
    redis.call('PEXPIRE', KEYS[b[1]], b[5])
  end
end
redis.call('HSET', KEYS[7], 'r', ARGV[4], 't', ARGV[5], 'c', ARGV[8])
redis.call('PEXPIRE', KEYS[7], ARGV[13])
return reply(1, '')
"""
)

SETTLE = (
    _BUCKET
    + """
local held = redis.call('HMGET', KEYS[7], 'r', 't', 'c')
if not held[2] then return 0 end
redis.call('DEL', KEYS[7])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local dtokens = tonumber(ARGV[4]) - tonumber(held[2])
local dcost = tonumber(ARGV[5]) - tonumber(held[3])
if ARGV[6] == '1' and tonumber(held[1]) > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  store(KEYS[1], rpm, math.min(rpm, bucket(KEYS[1], rpm) + tonumber(held[1])))
end
if dtokens ~= 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  store(KEYS[2], tpm, math.min(tpm, bucket(KEYS[2], tpm) - dtokens))
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

REMEMBER = """
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
