/* engine_redis_scripts.h - the Lua scripts of the Redis engine: each step
 * that reads and writes several keys runs as one script, so instances
 * never see each other's half-done work.
 *
 * Keys (ID = a node ID in hex, INST = an instance ID):
 *   rdv:n:ID          hash: inst, serial, nat, ip, port, first, last, online
 *   rdv:inst:INST     "1" with a TTL: the instance's heartbeat
 *   rdv:inst:INST:nodes  set: node IDs connected to INST
 *   rdv:insts         set: instances that have registered
 *   rdv:q:ID          list: queued entries for ID, oldest first
 *   rdv:qexp          sorted set: ID scored by its oldest entry's expiry
 *   rdv:qdepth        counter: entries in every rdv:q:*
 *   rdv:adm:allow, rdv:adm:revoked_node, rdv:adm:revoked_serial
 *                     hashes: admission lists, key -> time added (ms)
 * Channels: rdv:i:INST (one instance's inbox), rdv:presence (all),
 * rdv:admission (all: "A INST LIST KEY 1|0 ADDED", an admission change).
 *
 * An entry (queued, or sent to an inbox) is a header line and the raw
 * message: "M TO FROM TYPE SID CREATED EXPIRES\n" + bytes (SID "-" when
 * none). Inbox control lines: "K ID SERIAL" (ID authenticated elsewhere:
 * close its connection SERIAL), "N TO\n" + bytes (a notice for TO), and
 * relay frames "R ..." (relay.c's format, passed through).
 * Presence lines: "P INST ID 1 NAT LAST" / "P INST ID 0 - LAST".
 */
#ifndef SRV_ENGINE_REDIS_SCRIPTS_H
#define SRV_ENGINE_REDIS_SCRIPTS_H

/* ARGV: id inst serial nat ip port now. Records the node online here; an
 * older connection on another live instance is told to close. */
#define SRV_LUA_JOIN                                                                           \
    "local k='rdv:n:'..ARGV[1]\n"                                                              \
    "local old=redis.call('HMGET',k,'online','inst','serial')\n"                               \
    "redis.call('HSET',k,'inst',ARGV[2],'serial',ARGV[3],'nat',ARGV[4],'ip',ARGV[5],"          \
    "'port',ARGV[6],'last',ARGV[7],'online','1')\n"                                            \
    "redis.call('HSETNX',k,'first',ARGV[7])\n"                                                 \
    "redis.call('SADD','rdv:inst:'..ARGV[2]..':nodes',ARGV[1])\n"                              \
    "if old[1]=='1' and old[2] and old[2]~=ARGV[2] then\n"                                     \
    "  redis.call('SREM','rdv:inst:'..old[2]..':nodes',ARGV[1])\n"                             \
    "  redis.call('PUBLISH','rdv:i:'..old[2],'K '..ARGV[1]..' '..(old[3] or '0'))\n"           \
    "end\n"                                                                                    \
    "redis.call('PUBLISH','rdv:presence','P '..ARGV[2]..' '..ARGV[1]..' 1 '..ARGV[4]..' '.."   \
    "ARGV[7])\n"                                                                               \
    "return 1\n"

/* ARGV: id inst serial now. Offline, unless the node has since joined on
 * another connection. */
#define SRV_LUA_LEAVE                                                                          \
    "local k='rdv:n:'..ARGV[1]\n"                                                              \
    "local v=redis.call('HMGET',k,'inst','serial')\n"                                          \
    "if v[1]~=ARGV[2] or v[2]~=ARGV[3] then return 0 end\n"                                    \
    "redis.call('HSET',k,'online','0','last',ARGV[4])\n"                                       \
    "redis.call('SREM','rdv:inst:'..ARGV[2]..':nodes',ARGV[1])\n"                              \
    "redis.call('PUBLISH','rdv:presence','P '..ARGV[2]..' '..ARGV[1]..' 0 - '..ARGV[4])\n"     \
    "return 1\n"

/* ARGV: the ids, space-separated. For each: known ("" never seen, or
 * "1"), online 0|1 (only while the instance holding it is alive), last,
 * nat. */
#define SRV_LUA_LOOKUP                                                                         \
    "local out={}\n"                                                                           \
    "for id in string.gmatch(ARGV[1],'%S+') do\n"                                              \
    "  local v=redis.call('HMGET','rdv:n:'..id,'online','inst','last','nat')\n"                \
    "  if not v[3] then\n"                                                                     \
    "    out[#out+1]='' out[#out+1]='0' out[#out+1]='0' out[#out+1]='unknown'\n"               \
    "  else\n"                                                                                 \
    "    local on='0'\n"                                                                       \
    "    if v[1]=='1' and v[2] and redis.call('EXISTS','rdv:inst:'..v[2])==1 then on='1' end\n" \
    "    out[#out+1]='1' out[#out+1]=on out[#out+1]=v[3] out[#out+1]=(v[4] or 'unknown')\n"    \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "return out\n"

/* ARGV: to entry cap expires origin. 0 forwarded to the node's instance,
 * 1 queued, 2 queue full. */
#define SRV_LUA_ROUTE                                                                          \
    "local v=redis.call('HMGET','rdv:n:'..ARGV[1],'online','inst')\n"                          \
    "if v[1]=='1' and v[2] and v[2]~=ARGV[5] and "                                             \
    "redis.call('EXISTS','rdv:inst:'..v[2])==1 then\n"                                         \
    "  if redis.call('PUBLISH','rdv:i:'..v[2],ARGV[2])>0 then return 0 end\n"                  \
    "end\n"                                                                                    \
    "local q='rdv:q:'..ARGV[1]\n"                                                              \
    "if redis.call('LLEN',q)>=tonumber(ARGV[3]) then return 2 end\n"                           \
    "if redis.call('RPUSH',q,ARGV[2])==1 then redis.call('ZADD','rdv:qexp',ARGV[4],ARGV[1]) "  \
    "end\n"                                                                                    \
    "redis.call('INCR','rdv:qdepth')\n"                                                        \
    "return 1\n"

/* ARGV: to entry expires. Back into the queue, uncapped (it was accepted). */
#define SRV_LUA_REQUEUE                                                                        \
    "if redis.call('RPUSH','rdv:q:'..ARGV[1],ARGV[2])==1 then "                                \
    "redis.call('ZADD','rdv:qexp',ARGV[3],ARGV[1]) end\n"                                      \
    "redis.call('INCR','rdv:qdepth')\n"                                                        \
    "return 1\n"

/* ARGV: id. Every entry queued for id, oldest first, and the queue gone. */
#define SRV_LUA_TAKE                                                                           \
    "local q='rdv:q:'..ARGV[1]\n"                                                              \
    "local all=redis.call('LRANGE',q,0,-1)\n"                                                  \
    "if #all>0 then\n"                                                                         \
    "  redis.call('DEL',q) redis.call('ZREM','rdv:qexp',ARGV[1])\n"                            \
    "  redis.call('DECRBY','rdv:qdepth',#all)\n"                                               \
    "end\n"                                                                                    \
    "return all\n"

/* ARGV: now limit. Entries whose expiry passed, removed (each returned to
 * exactly one caller cluster-wide). */
#define SRV_LUA_EXPIRE                                                                         \
    "local ids=redis.call('ZRANGEBYSCORE','rdv:qexp','-inf',ARGV[1],'LIMIT',0,ARGV[2])\n"      \
    "local out={}\n"                                                                           \
    "for _,id in ipairs(ids) do\n"                                                             \
    "  local q='rdv:q:'..id\n"                                                                 \
    "  while true do\n"                                                                        \
    "    local h=redis.call('LINDEX',q,0)\n"                                                   \
    "    if not h then redis.call('ZREM','rdv:qexp',id) break end\n"                           \
    "    local e=tonumber(string.match(h,'^M %S+ %S+ %S+ %S+ %S+ (%d+)'))\n"                   \
    "    if e and e>tonumber(ARGV[1]) then redis.call('ZADD','rdv:qexp',e,id) break end\n"      \
    "    redis.call('LPOP',q) redis.call('DECR','rdv:qdepth') out[#out+1]=h\n"                 \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "return out\n"

/* ARGV: to payload origin. To the live instance holding `to`, if any. */
#define SRV_LUA_NOTIFY                                                                         \
    "local v=redis.call('HMGET','rdv:n:'..ARGV[1],'online','inst')\n"                          \
    "if v[1]=='1' and v[2] and redis.call('EXISTS','rdv:inst:'..v[2])==1 then\n"               \
    "  return redis.call('PUBLISH','rdv:i:'..v[2],ARGV[2])\n"                                  \
    "end\n"                                                                                    \
    "return 0\n"

/* ARGV: to payload origin. To the live instance holding `to` if it is not
 * the origin; returns that instance's ID, or "" when nothing was sent. */
#define SRV_LUA_RELAYTO                                                                        \
    "local v=redis.call('HMGET','rdv:n:'..ARGV[1],'online','inst')\n"                          \
    "if v[1]=='1' and v[2] and v[2]~=ARGV[3] and "                                             \
    "redis.call('EXISTS','rdv:inst:'..v[2])==1 then\n"                                         \
    "  if redis.call('PUBLISH','rdv:i:'..v[2],ARGV[2])>0 then return v[2] end\n"               \
    "end\n"                                                                                    \
    "return ''\n"

/* ARGV: inst now ttl_ms. The heartbeat; then finds instances whose
 * heartbeat stopped and, for each one this caller is the first to see,
 * takes its nodes offline (presence lines go out). Returns {live
 * instances, nodes connected to them}. */
#define SRV_LUA_BEAT                                                                           \
    "redis.call('SET','rdv:inst:'..ARGV[1],'1','PX',ARGV[3])\n"                                \
    "redis.call('SADD','rdv:insts',ARGV[1])\n"                                                 \
    "local alive=0\n"                                                                          \
    "local nodes=0\n"                                                                          \
    "for _,i in ipairs(redis.call('SMEMBERS','rdv:insts')) do\n"                               \
    "  if redis.call('EXISTS','rdv:inst:'..i)==1 then alive=alive+1\n"                         \
    "    nodes=nodes+redis.call('SCARD','rdv:inst:'..i..':nodes')\n"                           \
    "  elseif redis.call('SREM','rdv:insts',i)==1 then\n"                                      \
    "    local s='rdv:inst:'..i..':nodes'\n"                                                   \
    "    for _,id in ipairs(redis.call('SMEMBERS',s)) do\n"                                    \
    "      local k='rdv:n:'..id\n"                                                             \
    "      if redis.call('HGET',k,'inst')==i and redis.call('HGET',k,'online')=='1' then\n"     \
    "        redis.call('HSET',k,'online','0','last',ARGV[2])\n"                               \
    "        redis.call('PUBLISH','rdv:presence','P '..i..' '..id..' 0 - '..ARGV[2])\n"        \
    "      end\n"                                                                              \
    "    end\n"                                                                                \
    "    redis.call('DEL',s)\n"                                                                \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "return {alive,nodes}\n"

/* ARGV: inst now. This instance stops cleanly: its nodes go offline (presence
 * lines out) and its heartbeat and registration go. */
#define SRV_LUA_RETIRE                                                                         \
    "local s='rdv:inst:'..ARGV[1]..':nodes'\n"                                                 \
    "for _,id in ipairs(redis.call('SMEMBERS',s)) do\n"                                        \
    "  local k='rdv:n:'..id\n"                                                                 \
    "  if redis.call('HGET',k,'inst')==ARGV[1] and redis.call('HGET',k,'online')=='1' then\n"  \
    "    redis.call('HSET',k,'online','0','last',ARGV[2])\n"                                   \
    "    redis.call('PUBLISH','rdv:presence','P '..ARGV[1]..' '..id..' 0 - '..ARGV[2])\n"      \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "redis.call('DEL',s,'rdv:inst:'..ARGV[1])\n"                                               \
    "redis.call('SREM','rdv:insts',ARGV[1])\n"                                                 \
    "return 1\n"

/* ARGV: list key present(1|0) added inst. One admission change, told to
 * every instance. Returns 0 when removing a key that was not there. */
#define SRV_LUA_ADM_SET                                                                        \
    "local h='rdv:adm:'..ARGV[1]\n"                                                             \
    "local r=1\n"                                                                               \
    "if ARGV[3]=='1' then redis.call('HSETNX',h,ARGV[2],ARGV[4])\n"                             \
    "else r=redis.call('HDEL',h,ARGV[2]) end\n"                                                 \
    "redis.call('PUBLISH','rdv:admission','A '..ARGV[5]..' '..ARGV[1]..' '..ARGV[2]..' '.."     \
    "ARGV[3]..' '..ARGV[4])\n"                                                                  \
    "return r\n"

/* Every admission list: {allow, revoked_node, revoked_serial}, each a flat
 * [key, added, ...] array. */
#define SRV_LUA_ADM_LOAD                                                                       \
    "return {redis.call('HGETALL','rdv:adm:allow'),redis.call('HGETALL','rdv:adm:revoked_node'),"\
    "redis.call('HGETALL','rdv:adm:revoked_serial')}\n"

#endif
