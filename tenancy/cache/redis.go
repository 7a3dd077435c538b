package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis backend invalidates a tenant without finding its keys. Each
// tenant has a generation, a random token stored at g:<id>:<schema>, and
// its entries live at t:<id>:<schema>:<generation>:<key>. Invalidating
// writes a new token: the old entries can no longer be named and expire on
// their own TTL. No SCAN, no index of keys to keep, and it holds across
// instances sharing the server. Shared entries live at s:<key>.
//
// The scripts below read the generation and use it in one step, on the
// server, so a read costs one round trip and a write racing an
// invalidation lands wholly before or after it. A generation that went
// missing (evicted under maxmemory) reads as "no entries", and the next
// write starts a fresh random one, so evicted generations never bring old
// entries back.
//
// The scripts build the entry's key from the generation, so they touch a
// key they do not declare. That works on one Redis server (with or without
// replicas) but not on Redis Cluster, which this backend does not support.

// getScript: KEYS[1] generation key; ARGV[1] tenant prefix, ARGV[2] key.
var getScript = redis.NewScript(`
local gen = redis.call('GET', KEYS[1])
if not gen then return false end
return redis.call('GET', ARGV[1] .. ':' .. gen .. ':' .. ARGV[2])
`)

// setScript: as getScript, plus ARGV[3] value, ARGV[4] TTL in milliseconds
// and ARGV[5] a generation to start with if the tenant has none.
var setScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[5], 'NX')
local gen = redis.call('GET', KEYS[1])
return redis.call('SET', ARGV[1] .. ':' .. gen .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
`)

// delScript: as getScript.
var delScript = redis.NewScript(`
local gen = redis.call('GET', KEYS[1])
if not gen then return 0 end
return redis.call('DEL', ARGV[1] .. ':' .. gen .. ':' .. ARGV[2])
`)

type redisBackend struct {
	rdb *redis.Client
}

func newRedis(rdb *redis.Client) *redisBackend {
	return &redisBackend{rdb: rdb}
}

// genKey names the generation of a tenant scope ("t:1:acme" → "g:1:acme").
func genKey(sc scope) string {
	return "g" + sc.name[1:]
}

// newGeneration returns a random token; 80 bits make reuse of an old
// generation out of reach.
func newGeneration() string {
	return rand.Text()[:16]
}

// roundTTL rounds a TTL up to Redis's unit, the millisecond, so that a
// tiny TTL still expires rather than being refused.
func roundTTL(ttl time.Duration) time.Duration {
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

func (r *redisBackend) get(ctx context.Context, sc scope, key string) ([]byte, bool, error) {
	var (
		s   string
		err error
	)
	if sc.tenant {
		s, err = getScript.Run(ctx, r.rdb, []string{genKey(sc)}, sc.name, key).Text()
	} else {
		s, err = r.rdb.Get(ctx, sc.name+":"+key).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return []byte(s), true, nil
}

func (r *redisBackend) set(
	ctx context.Context,
	sc scope,
	key string,
	value []byte,
	ttl time.Duration,
) error {
	if sc.tenant {
		ms := strconv.FormatInt(roundTTL(ttl).Milliseconds(), 10)
		args := []any{sc.name, key, value, ms, newGeneration()}
		return setScript.Run(ctx, r.rdb, []string{genKey(sc)}, args...).Err()
	}
	return r.rdb.Set(ctx, sc.name+":"+key, value, roundTTL(ttl)).Err()
}

func (r *redisBackend) del(ctx context.Context, sc scope, key string) error {
	if sc.tenant {
		return delScript.Run(ctx, r.rdb, []string{genKey(sc)}, sc.name, key).Err()
	}
	return r.rdb.Del(ctx, sc.name+":"+key).Err()
}

// dropScope starts a new generation for a tenant. Generation keys carry no
// TTL: one short key per tenant that ever cached something.
func (r *redisBackend) dropScope(ctx context.Context, sc scope) error {
	return r.rdb.Set(ctx, genKey(sc), newGeneration(), 0).Err()
}

func (r *redisBackend) ping(ctx context.Context) error {
	return r.rdb.Ping(ctx).Err()
}

func (r *redisBackend) close() error {
	return r.rdb.Close()
}
