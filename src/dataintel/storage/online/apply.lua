-- Apply one (entity, partition) of a micro-batch to the entity's hash, atomically: the position
-- rule of the OnlineStore port, then per field exactly dataintel.model.tiles.apply_partial
-- (merge, trim) over the partial rows of its group, in their order (merges into the lifetime
-- base are float sums: their order matters).
-- KEYS[1]: the entity hash.  ARGV[1]: msgpack {partition, lo = first offset, hi = last
-- offset, ttl ms}; then per partial group two arguments: its spec, msgpack
-- {{field, aggregation, first state column, cuts (per level), lifetime}, ...} (the same
-- bytes for every entity of the group), and the entity's rows, msgpack {last event time,
-- {{level, tile start, state columns... (the port's partial layout, null = no events)}, ...}}.
-- Returns {1} applied, {0, stored} skipped (a replay), {2, stored} conflict.
local head = cmsgpack.unpack(ARGV[1])
local key = KEYS[1]
local pfield = '@' .. string.format('%d', head[1])
local lo, hi, ttl = head[2], head[3], head[4]
local stored = redis.call('HGET', key, pfield)
if stored then
  stored = tonumber(stored)
  if stored >= hi then return {0, stored} end
  if stored >= lo then return {2, stored} end
end

local SIZES = {[0] = 1, 1000000, 60000000, 3600000000, 86400000000}
local TOP = 4

-- Python's order: strings by code point (= UTF-8 bytes), whatever the server's LC_COLLATE
-- (Lua's '<' on strings uses strcoll).
local function lt(a, b)
  if type(a) ~= 'string' or type(b) ~= 'string' then return a < b end
  if a == b then return false end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function before(a, b) -- (ts, event_id) of a < that of b
  if a[1] ~= b[1] then return a[1] < b[1] end
  return lt(a[2], b[2])
end

local function merge(agg, a, b)
  if a == nil then return b end
  if b == nil then return a end
  if agg == 'COUNT' or agg == 'SUM' then return a + b end
  if agg == 'AVG' then return {a[1] + b[1], a[2] + b[2]} end
  if agg == 'MIN' then if lt(b, a) then return b end return a end
  if agg == 'MAX' then if lt(a, b) then return b end return a end
  if agg == 'FIRST' then if before(b, a) then return b end return a end
  if agg == 'LAST' then if before(a, b) then return b end return a end
  -- COUNT_DISTINCT: a's keys, then b's not in a (as tiles.merge)
  local seen, out = {}, {}
  for _, v in ipairs(a) do seen[v] = true; out[#out + 1] = v end
  for _, v in ipairs(b) do
    if not seen[v] then seen[v] = true; out[#out + 1] = v end
  end
  return out
end

local function trim(agg, blob, cuts, lifetime)
  local levels = blob.t
  local top = levels[tostring(TOP)] or {}
  local expired = {}
  for a, _ in pairs(top) do
    if a + SIZES[TOP] <= cuts[TOP + 1] then expired[#expired + 1] = a end
  end
  table.sort(expired)
  if #expired > 0 and lifetime then
    for _, a in ipairs(expired) do blob.b = merge(agg, blob.b, top[a]) end
    local e = expired[#expired] + SIZES[TOP]
    if blob.e == nil or e > blob.e then blob.e = e end
  end
  for i = 0, TOP do
    local level = tostring(i)
    local found = levels[level]
    if type(found) == 'table' then
      local dead = {}
      for a, _ in pairs(found) do
        if a + SIZES[i] <= cuts[i + 1] or (blob.e ~= nil and a < blob.e) then
          dead[#dead + 1] = a
        end
      end
      for _, a in ipairs(dead) do found[a] = nil end
      if next(found) == nil then levels[level] = nil end
    else
      levels[level] = nil
    end
  end
end

-- A field's state on one partial row (column c on): nil when the row has no events of it.
local function state_of(agg, row, c)
  local v = row[c]
  if v == nil then return nil end
  if agg == 'AVG' then
    local n = row[c + 1]
    if n == nil or n == 0 then return nil end
    return {v, n}
  end
  if agg == 'FIRST' or agg == 'LAST' then return {v, row[c + 1], cjson.decode(row[c + 2])} end
  if agg == 'COUNT' and v == 0 then return nil end
  if agg == 'COUNT_DISTINCT' and #v == 0 then return nil end
  return v
end

local function apply_rows(blob, spec, body)
  local agg, c, cuts, lifetime = spec[2], spec[3], spec[4], spec[5]
  if blob == nil then blob = {} end
  if type(blob.t) ~= 'table' then blob.t = {} end
  local levels = blob.t
  local base_end = blob.e
  for _, row in ipairs(body[2]) do
    local s = state_of(agg, row, c)
    if s ~= nil then
      local i, a = row[1], row[2]
      if base_end ~= nil and a < base_end then
        if i == TOP and lifetime then blob.b = merge(agg, blob.b, s) end
      else
        local level = string.format('%d', i)
        local current = levels[level]
        if type(current) ~= 'table' then current = {}; levels[level] = current end
        current[a] = merge(agg, current[a], s)
      end
    end
  end
  if blob.l == nil or body[1] > blob.l then blob.l = body[1] end
  trim(agg, blob, cuts, lifetime)
  return blob
end

local fields, work = {}, {}
for g = 2, #ARGV, 2 do
  local specs, body = cmsgpack.unpack(ARGV[g]), cmsgpack.unpack(ARGV[g + 1])
  for _, spec in ipairs(specs) do
    fields[#fields + 1] = spec[1]
    work[#work + 1] = {spec, body}
  end
end
local current = {}
if #fields > 0 then current = redis.call('HMGET', key, unpack(fields)) end
local out = {}
for i, name in ipairs(fields) do
  local blob = nil
  if current[i] then blob = cmsgpack.unpack(current[i]) end
  out[#out + 1] = name
  out[#out + 1] = cmsgpack.pack(apply_rows(blob, work[i][1], work[i][2]))
end
out[#out + 1] = pfield
out[#out + 1] = string.format('%d', hi)
redis.call('HSET', key, unpack(out))
redis.call('PEXPIRE', key, ttl)
return {1}
