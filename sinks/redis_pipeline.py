"""The pending Redis writes (``sinks.cache_writes.Ops``) as one pipeline, and its Lua scripts.

One non-transactional pipeline per write, with the writes of many keys packed into one command
where Redis allows it (per-command overhead, in redis-py and in Redis, dominates: a batch of
5,000 events often touches 5,000 users): one script call per ``USERS_PER_CALL`` users, one ZADD
of the open sessions and one ZREM of the closed ones, a script call per alert, a SET per count.
What the keys hold is described in ``sinks.redis_sink``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from redis.client import Pipeline

from operators.records import RedisKeys
from sinks.cache_writes import OpKey, Ops
from sinks.codec import json_text
from sinks.retry import redis_data_error

RefusedWrite = tuple[OpKey, Any, Exception]
"""A pending write Redis refused for its data: its key, its value, the error."""

# For each user key: write its fields unless the stored last_seen is newer (ISO strings of one
# fixed format compare like the times they denote), and renew its TTL. ARGV[1] is the TTL, then,
# per key in order: the number of field/value pairs, the new last_seen, then the pairs. A key of
# another type (WRONGTYPE) is skipped and its index returned; any other error aborts the call.
USERS_LUA = """
local ttl, i, refused = tonumber(ARGV[1]), 2, {}
for k = 1, #KEYS do
  local pairs_n, stamp = tonumber(ARGV[i]), ARGV[i + 1]
  local cur = redis.pcall('HGET', KEYS[k], 'last_seen')
  if type(cur) == 'table' and cur.err then
    if string.sub(cur.err, 1, 9) ~= 'WRONGTYPE' then return redis.error_reply(cur.err) end
    refused[#refused + 1] = k
  else
    if not cur or cur <= stamp then
      redis.call('HSET', KEYS[k], unpack(ARGV, i + 2, i + 1 + 2 * pairs_n))
    end
    redis.call('EXPIRE', KEYS[k], ttl)
  end
  i = i + 2 + 2 * pairs_n
end
return refused
"""
USERS_PER_CALL = 1000  # bounds how long one script call holds Redis (~1 ms)
# Drop older entries of this alert (they start with ARGV[1]), push the new one, cap the list.
ALERT_LUA = """
local head = ARGV[1]
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(v, 1, #head) == head then redis.call('LREM', KEYS[1], 0, v) end
end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# Remove the recent alerts whose subject is the user ARGV[1] (an erasure).
ERASE_ALERTS_LUA = """
local removed = 0
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, doc = pcall(cjson.decode, v)
  if ok and doc.subject_type == 'user' and doc.subject == ARGV[1] then
    removed = removed + redis.call('LREM', KEYS[1], 0, v)
  end
end
return removed
"""


def _last_seen(ts: datetime) -> str:
    """One fixed ISO format, so that string order is time order."""
    if ts.tzinfo is not UTC:  # validated events are in UTC already
        ts = ts.astimezone(UTC)
    return ts.isoformat(timespec="microseconds")


class CachePipeline:
    """Sends pending writes to one client, its scripts registered once."""

    def __init__(
        self,
        client: redis.Redis,
        keys: RedisKeys,
        *,
        key_ttl_seconds: int,
        counts_ttl_seconds: int,
        recent_alerts_cap: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.key_ttl_seconds = key_ttl_seconds
        self.counts_ttl_seconds = counts_ttl_seconds
        self.recent_alerts_cap = recent_alerts_cap
        self._users_script = client.register_script(USERS_LUA)
        self._alert_script = client.register_script(ALERT_LUA)
        self._erase_alerts_script = client.register_script(ERASE_ALERTS_LUA)

    def send(self, ops: Ops) -> list[RefusedWrite]:
        """All writes in one non-transactional pipeline, users and sessions packed per command.

        Returns the writes refused for their data (WRONGTYPE), which are not retried; raises
        the first error meaning Redis is unavailable (OOM, READONLY...), keeping every write
        pending."""
        keys = self.keys
        ttl = self.key_ttl_seconds
        active, recent = keys.sessions_active, keys.alerts_recent
        pipe = self.client.pipeline(transaction=False)
        commands: list[list[OpKey]] = []  # the ops each command of the pipeline writes
        user_ops: list[OpKey] = []
        user_keys: list[str] = []
        user_args: list[str | int] = [ttl]
        scores: dict[str, float] = {}
        ended: list[str] = []
        for op_key, value in ops.items.items():
            kind, ident = op_key
            if kind == "erase":  # first in the map (Ops.erase): later writes of the user stay
                commands += self._erase(pipe, ident, value)
            elif kind == "user":
                stamp = _last_seen(value["last_seen"][0])
                user_ops.append(op_key)
                user_keys.append(keys.user(ident))
                user_args += (len(value), stamp)
                for field, (_, text) in value.items():
                    user_args += (field, stamp if text is None else text)
                if len(user_keys) == USERS_PER_CALL:
                    self._users_script(keys=user_keys, args=user_args, client=pipe)
                    commands.append(user_ops)
                    user_ops, user_keys, user_args = [], [], [ttl]
            elif kind == "session":
                if value is None:
                    ended.append(ident)
                else:
                    scores[ident] = value
            elif kind == "alert":
                head = json_text({"alert_id": ident})[:-1] + ","
                self._alert_script(
                    keys=[recent], args=[head, value, self.recent_alerts_cap, ttl], client=pipe
                )
                commands.append([op_key])
            else:
                pipe.set(ident, value, ex=self.counts_ttl_seconds)
                commands.append([op_key])
        if user_keys:
            self._users_script(keys=user_keys, args=user_args, client=pipe)
            commands.append(user_ops)
        if scores:
            pipe.zadd(active, scores)
            commands.append([("session", i) for i in scores])
        if ended:
            pipe.zrem(active, *ended)
            commands.append([("session", i) for i in ended])
        if scores or ended:
            pipe.expire(active, ttl)
            commands.append([])
        return _refused(ops, commands, pipe.execute(raise_on_error=False))

    def _erase(self, pipe: Pipeline, user: str, session_ids: tuple[str, ...]) -> list[list[OpKey]]:
        """Queue the deletion of a user's keys: their hash, their sessions in sessions:active,
        the recent alerts about them; returns the (empty) op lists of those commands."""
        keys = self.keys
        pipe.delete(keys.user(user))
        if session_ids:
            pipe.zrem(keys.sessions_active, *session_ids)
        self._erase_alerts_script(keys=[keys.alerts_recent], args=[user], client=pipe)
        return [[], [], []] if session_ids else [[], []]


def _refused(ops: Ops, commands: list[list[OpKey]], results: list[Any]) -> list[RefusedWrite]:
    """The writes refused for their data, from a pipeline's results (``commands``: the ops each
    command wrote); raises the first error meaning Redis is unavailable."""
    refused: list[RefusedWrite] = []
    for written, result in zip(commands, results, strict=True):
        if isinstance(result, Exception):
            if not redis_data_error(result):
                raise result
            refused += [(k, ops.items[k], result) for k in written]
        elif written and written[0][0] == "user" and result:  # the script's refused indexes
            wrongtype = redis.exceptions.ResponseError("WRONGTYPE: the key is not a hash")
            refused += [(written[k - 1], ops.items[written[k - 1]], wrongtype) for k in result]
    return refused
