/**
 * The Lua scripts of the Redis state backend. Each processes a whole chunk of a batch in request order, atomically, and
 * returns one short verdict string per request, so a batch call is one EVALSHA (one round trip).
 *
 * Every key a script touches is passed in KEYS (never built inside Lua), as Redis requires of well-behaved scripts.
 * Sequences travel as decimal strings and are stored as received: Lua 5.1 numbers are doubles, exact for every safe
 * integer, but `tostring` would print large ones in exponent form, so a sequence is never formatted inside Lua.
 */

/**
 * Claim keys in order.
 * KEYS[i]: the claim key of request i.  ARGV[1]: TTL in ms.  ARGV[i + 1]: the owner token of request i.
 * Returns per request: `c` (claimed), `o` (own: this owner already held it), `t<owner>` (taken by <owner>).
 */
export const CLAIM_LUA = `
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local owner = ARGV[i + 1]
  local held = redis.call('GET', KEYS[i])
  if not held then
    redis.call('SET', KEYS[i], owner, 'PX', ttl)
    out[i] = 'c'
  elseif held == owner then
    out[i] = 'o'
  else
    out[i] = 't' .. held
  end
end
return out
`;

/**
 * Check and advance per-stream replay windows in order.
 * KEYS[2i-1]: the stream's highest-sequence key; KEYS[2i]: the (stream, sequence) owner key, for request i.
 * ARGV[1]: TTL in ms.  ARGV[2]: window.  ARGV[2i+1]: sequence (decimal); ARGV[2i+2]: owner token, for request i.
 * Returns per request: `n` (new, or this owner's own earlier acceptance), `d<owner>` (duplicate of <owner>'s),
 * `o<highest>` (too old: more than `window` below <highest>, and never accepted).
 * An accepted sequence writes its owner key and refreshes the stream's highest (raised when the sequence is higher),
 * both with the TTL.
 */
export const SEQUENCE_LUA = `
local ttl = ARGV[1]
local window = tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS / 2 do
  local highKey = KEYS[2 * i - 1]
  local seqKey = KEYS[2 * i]
  local seqText = ARGV[2 * i + 1]
  local owner = ARGV[2 * i + 2]
  local held = redis.call('GET', seqKey)
  if held then
    if held == owner then out[i] = 'n' else out[i] = 'd' .. held end
  else
    local seq = tonumber(seqText)
    local high = redis.call('GET', highKey)
    if high and seq < tonumber(high) - window then
      out[i] = 'o' .. high
    else
      redis.call('SET', seqKey, owner, 'PX', ttl)
      if (not high) or seq > tonumber(high) then
        redis.call('SET', highKey, seqText, 'PX', ttl)
      else
        redis.call('PEXPIRE', highKey, ttl)
      end
      out[i] = 'n'
    end
  end
end
return out
`;
