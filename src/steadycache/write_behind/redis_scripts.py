"""The Lua scripts of ``RedisStreamJournal``: each journal step is one atomic script.

Every script touches only keys derived from the stream name (same slot with a hash tag).
Keys, as ``redis_journal`` describes them: ``<stream>``, ``:keys``, ``:applied``, ``:retry``,
``:dead`` and ``:index``, a sorted set (all scores 0) of ``<identity>:<sequence>`` members, one
per entry in the stream. Sequences are fixed-width digits, so a lexical range over
``<identity>:`` lists one key's entries in journal order: a claim decides a key as a whole.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACK", "APPEND", "CLAIM", "DEAD", "RETRY"]

# ``1700000000000-5`` <-> ``<20 digits>-<20 digits>``, as ``redis_journal._sequence`` does.
_SEQUENCES: Final = """
local function padded(id)
  local ms, n = string.match(id, '^(%d+)%-(%d+)$')
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #n) .. n
end
local function unpadded(sequence)
  local ms, n = string.match(sequence, '^0*(%d+)%-0*(%d+)$')
  return ms .. '-' .. n
end
"""

# KEYS: stream, keys, index. ARGV: identity, record.
APPEND: Final = (
    _SEQUENCES
    + """
local id = redis.call('XADD', KEYS[1], '*', 'identity', ARGV[1], 'record', ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('ZADD', KEYS[3], 0, ARGV[1] .. ':' .. padded(id))
return id
"""
)

# KEYS: stream, keys, applied, retry, index. ARGV: group, applied sequence ('' for a plain
# ack), applied identity, then (id, identity) pairs. Returns XDEL's 0/1 per pair: 1 = removed
# here. XDEL is the once-only guard: a second ack of the same entry decrements nothing.
ACK: Final = (
    _SEQUENCES
    + """
local removed = {}
for i = 4, #ARGV, 2 do
  local id, identity = ARGV[i], ARGV[i + 1]
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], identity .. ':' .. padded(id))
  local gone = redis.call('XDEL', KEYS[1], id)
  if gone == 1 and redis.call('HINCRBY', KEYS[2], identity, -1) <= 0 then
    redis.call('HDEL', KEYS[2], identity)
    redis.call('HDEL', KEYS[3], identity)
  end
  removed[#removed + 1] = gone
end
-- Older entries of the key still wait somewhere (a retry, a dead flusher's lease): remember
-- what was applied so they are superseded when claimed. Sequences are fixed-width digits, so
-- string order is journal order.
if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  local mark = redis.call('HGET', KEYS[3], ARGV[3])
  if not mark or mark < ARGV[2] then
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
  end
end
return removed
"""
)

# KEYS: stream, retry. ARGV: group, id, attempts, idle ms, error.
# Only the current delivery (same delivery count) may reschedule: if another flusher claimed
# the entry since, it is theirs.
RETRY: Final = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][4] ~= tonumber(ARGV[3]) then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], p[1][2], 0, ARGV[2], 'IDLE', ARGV[4], 'JUSTID')
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
return 1
"""

# KEYS: stream, keys, applied, retry, dead, index. ARGV: group, id, identity, attempts,
# record, sequence, error, dead_at.
DEAD: Final = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][4] ~= tonumber(ARGV[4]) then
  return 0
end
redis.call('XADD', KEYS[5], '*', 'identity', ARGV[3], 'record', ARGV[5], 'sequence', ARGV[6],
           'attempts', ARGV[4], 'error', ARGV[7], 'dead_at', ARGV[8])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[3] .. ':' .. ARGV[6])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 1
   and redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
end
return 1
"""

# KEYS: stream, keys, applied, retry, index. ARGV: group, consumer, count, min idle ms, PEL
# cursor ('0-0': from the start), how many PEL rows to look at.
# Returns {next cursor, lost, id, record, attempts, recovered (0/1), applied mark ('' if
# none), id, record, ...}: the entries handed out, now leased to the consumer.
#
# ``ordering.claimable`` is the rule, in Python; ``decide`` below is the same rule and must stay
# in step with it. Per entry: delivery count 0 means parked (read from the group, never handed
# out); pending with idle < min idle is leased unless ``:retry`` has it (waiting for its
# backoff); idle >= min idle (or parked) is due.
CLAIM: Final = (
    _SEQUENCES
    + """
local stream, keys, applied, retry, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer = ARGV[1], ARGV[2]
local remaining, min_idle, scan = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local out = {'0-0', 0}

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

local function forget(identity, member)
  redis.call('ZREM', index, member)
  if redis.call('HINCRBY', keys, identity, -1) <= 0 then
    redis.call('HDEL', keys, identity)
    redis.call('HDEL', applied, identity)
  end
end

-- Pending, but removed from the stream outside the journal (XTRIM, XDEL by hand): lost.
local lost = {}
local function lose(id)
  if lost[id] then return end
  lost[id] = true
  redis.call('XACK', stream, group, id)
  redis.call('HDEL', retry, id)
  out[2] = out[2] + 1
end

local function hand_out(entry, mark)
  -- Not JUSTID: the delivery count goes up by one and the lease starts now.
  local got = redis.call('XCLAIM', stream, group, consumer, 0, entry.id)
  if #got == 0 or not got[1] then
    lose(entry.id)
    if entry.identity then forget(entry.identity, entry.member) end
    return
  end
  redis.call('HDEL', retry, entry.id)
  local recovered = (entry.delivered > 0 and not entry.retrying) and 1 or 0
  local n = #out
  out[n + 1] = entry.id
  out[n + 2] = field(got[1][2], 'record') or ''
  out[n + 3] = entry.delivered + 1
  out[n + 4] = recovered
  out[n + 5] = mark
  remaining = remaining - 1
end

-- Every entry of the key still in the stream, in journal order, with its state.
local function entries_of(identity, id)
  -- An entry appended before the index existed is tracked from now on.
  redis.call('ZADD', index, 'NX', 0, identity .. ':' .. padded(id))
  local members = redis.call('ZRANGEBYLEX', index, '[' .. identity .. ':',
                             '[' .. identity .. ':~')
  local entries = {}
  for _, member in ipairs(members) do
    local entry_id = unpadded(string.sub(member, #identity + 2))
    local p = redis.call('XPENDING', stream, group, entry_id, entry_id, 1)
    local entry = {id = entry_id, identity = identity, member = member, delivered = 0}
    if #p == 0 then
      -- Not read from the group yet (not due: XREADGROUP delivers in order), or gone.
      entry.due = false
      if #redis.call('XRANGE', stream, entry_id, entry_id) == 0 then
        forget(identity, member)
        entry = nil
      end
    else
      entry.delivered = p[1][4]
      entry.retrying = redis.call('HEXISTS', retry, entry_id) == 1
      entry.leased = entry.delivered > 0 and p[1][3] < min_idle and not entry.retrying
      entry.due = entry.delivered == 0 or p[1][3] >= min_idle
    end
    if entry then entries[#entries + 1] = entry end
  end
  return entries
end

local decided = {}
local function decide(identity, id, delivered)
  local name = identity or id
  if decided[name] then return end
  decided[name] = true
  if not identity then
    -- Not written by this journal: nothing to order it with; handed out, left unreadable.
    hand_out({id = id, delivered = delivered}, '')
    return
  end
  local entries = entries_of(identity, id)
  local newest_delivered = 0
  for i, entry in ipairs(entries) do
    if entry.leased then return end
    if entry.delivered > 0 then newest_delivered = i end
  end
  local first = 1
  if newest_delivered > 0 and not entries[newest_delivered].due then
    first = newest_delivered + 1
  end
  local eligible = {}
  for i = first, #entries do
    if entries[i].due then eligible[#eligible + 1] = entries[i] end
  end
  local mark = redis.call('HGET', applied, identity) or ''
  for i = math.max(1, #eligible - remaining + 1), #eligible do
    hand_out(eligible[i], mark)
  end
end

-- New entries are read from the group now, so that it moves past them, but parked (delivery
-- count 0) until their key is decided: a key with a live lease must not see them handed out.
local fresh = {}
local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining,
                         'STREAMS', stream, '>')
if reply then
  for _, entry in ipairs(reply[1][2]) do
    redis.call('XCLAIM', stream, group, consumer, 0, entry[1], 'RETRYCOUNT', 0, 'JUSTID')
    fresh[#fresh + 1] = {entry[1], field(entry[2], 'identity')}
  end
end

-- Due retries, lapsed leases and parked entries first: they are the oldest writes.
local start = ARGV[5] == '0-0' and '-' or '(' .. ARGV[5]
local rows = redis.call('XPENDING', stream, group, start, '+', scan)
local cursor = '0-0'
for _, row in ipairs(rows) do
  if remaining <= 0 then break end
  cursor = row[1]
  if row[4] == 0 or row[3] >= min_idle then
    local entry = redis.call('XRANGE', stream, row[1], row[1])[1]
    if entry then
      decide(field(entry[2], 'identity'), row[1], row[4])
    else
      lose(row[1])
    end
  end
end
if remaining > 0 and #rows < scan then cursor = '0-0' end
out[1] = cursor
for _, entry in ipairs(fresh) do
  if remaining <= 0 then break end
  decide(entry[2], entry[1], 0)
end
return out
"""
)
