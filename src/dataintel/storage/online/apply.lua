-- Apply ONE EntityUpdate to one entity hash, atomically: the position rule of the OnlineStore
-- port, then per feature exactly dataintel.features.tiles.apply_partial (merge, trim).
-- KEYS[1]: the entity hash.  ARGV[1]: msgpack {p = partition, lo = first offset,
-- hi = last offset, ttl = ms, f = {field = {agg, levels, last_ts, cuts, lifetime}}} where
-- levels = {{level, {start, state, start, state, ...}}, ...} in the order Python iterates
-- the partial (merges into the lifetime base are float sums: their order matters).
-- Returns {1} applied, {0, stored} skipped (a replay), {2, stored} conflict.
local u = cmsgpack.unpack(ARGV[1])
local key = KEYS[1]
local pfield = '@' .. string.format('%d', u.p)
local stored = redis.call('HGET', key, pfield)
if stored then
  stored = tonumber(stored)
  if stored >= u.hi then return {0, stored} end
  if stored >= u.lo then return {2, stored} end
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

local function apply_partial(blob, agg, partial, last_ts, cuts, lifetime)
  if blob == nil then blob = {} end
  if type(blob.t) ~= 'table' then blob.t = {} end
  local levels = blob.t
  local base_end = blob.e
  for _, pair in ipairs(partial) do
    local level, flat = pair[1], pair[2]
    local i = tonumber(level)
    local current = levels[level]
    if type(current) ~= 'table' then current = {}; levels[level] = current end
    for k = 1, #flat, 2 do
      local a, s = flat[k], flat[k + 1]
      if base_end ~= nil and a < base_end then
        if i == TOP and lifetime then blob.b = merge(agg, blob.b, s) end
      else
        current[a] = merge(agg, current[a], s)
      end
    end
  end
  if blob.l == nil or last_ts > blob.l then blob.l = last_ts end
  trim(agg, blob, cuts, lifetime)
  return blob
end

local fields = {}
for name, _ in pairs(u.f) do fields[#fields + 1] = name end
local current = {}
if #fields > 0 then current = redis.call('HMGET', key, unpack(fields)) end
local out = {}
for i, name in ipairs(fields) do
  local spec = u.f[name]
  local blob = nil
  if current[i] then blob = cmsgpack.unpack(current[i]) end
  blob = apply_partial(blob, spec[1], spec[2], spec[3], spec[4], spec[5])
  out[#out + 1] = name
  out[#out + 1] = cmsgpack.pack(blob)
end
out[#out + 1] = pfield
out[#out + 1] = string.format('%d', u.hi)
redis.call('HSET', key, unpack(out))
redis.call('PEXPIRE', key, u.ttl)
return {1}
