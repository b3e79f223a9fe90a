package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/redis/go-redis/v9"
)

// redisClient builds the client the environment describes (URL, cluster or sentinel) and
// a description of it that is safe to print (no password).
//
// With REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS, a REDIS_URL set as well gives the
// credentials, the database and TLS (rediss://) for those nodes; its host is not used.
func redisClient(env config.Env) (redis.UniversalClient, string, error) {
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
		return redis.NewClient(creds), "REDIS_URL (" + safeHost(env.RedisURL.Reveal()) + ")", nil
	}
	return nil, "REDIS_URL", fmt.Errorf("REDIS_URL: not set")
}

func safeHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	if u.Scheme == "unix" {
		return "unix:" + u.Path
	}
	return u.Scheme + "://" + u.Host
}

// pingRedis checks the server answers within 3 s.
func pingRedis(ctx context.Context, c redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}
