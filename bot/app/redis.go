package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/redis/go-redis/v9"
)

// RedisClient builds the client the environment describes (URL, cluster or sentinel) and
// a description of it that is safe to print (no password).
//
// With REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS, a REDIS_URL set as well gives the
// credentials, the database and TLS (rediss://) for those nodes; its host is not used.
func RedisClient(env config.Env) (redis.UniversalClient, string, error) {
	var creds *redis.Options
	if env.RedisURL.IsSet() {
		opt, err := redis.ParseURL(env.RedisURL.Reveal())
		if err != nil {
			return nil, "REDIS_URL", fmt.Errorf("REDIS_URL: not a valid Redis URL")
		}
		creds = opt
	}
	switch {
	case len(env.RedisClusterAddrs) > 0:
		o := &redis.ClusterOptions{Addrs: env.RedisClusterAddrs}
		if creds != nil {
			o.Username, o.Password, o.TLSConfig = creds.Username, creds.Password, creds.TLSConfig
		}
		return redis.NewClusterClient(o), fmt.Sprintf("REDIS_CLUSTER_ADDRS %v", env.RedisClusterAddrs), nil
	case len(env.RedisSentinelAddrs) > 0:
		o := &redis.FailoverOptions{MasterName: env.RedisMasterName, SentinelAddrs: env.RedisSentinelAddrs}
		if creds != nil {
			o.Username, o.Password, o.TLSConfig, o.DB = creds.Username, creds.Password, creds.TLSConfig, creds.DB
		}
		return redis.NewFailoverClient(o), fmt.Sprintf("REDIS_SENTINEL_ADDRS %v (master %s)", env.RedisSentinelAddrs, env.RedisMasterName), nil
	case creds != nil:
		return redis.NewClient(creds), "REDIS_URL (" + safeRedisURL(env.RedisURL.Reveal(), creds.DB) + ")", nil
	}
	return nil, "REDIS_URL", fmt.Errorf("REDIS_URL: not set")
}

// safeRedisURL is the Redis URL as the client uses it — scheme, user, host and database —
// with the password replaced, so start-up logs and errors can show which server and
// database are meant without showing the secret.
func safeRedisURL(raw string, db int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(u.User.Username())
		if _, ok := u.User.Password(); ok {
			b.WriteString(":[redacted]")
		}
		b.WriteString("@")
	}
	if u.Scheme == "unix" {
		fmt.Fprintf(&b, "%s?db=%d", u.Path, db)
		return b.String()
	}
	fmt.Fprintf(&b, "%s/%d", u.Host, db)
	return b.String()
}

// PingRedis checks the server answers within 3 s.
func PingRedis(ctx context.Context, c redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// RedactErr keeps only the final cause of a Redis connection error: dial errors never
// carry a password, but a URL parse error could.
func RedactErr(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
