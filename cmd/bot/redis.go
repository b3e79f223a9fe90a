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
func redisClient(env config.Env) (redis.UniversalClient, string, error) {
	switch {
	case len(env.RedisClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: env.RedisClusterAddrs}), fmt.Sprintf("REDIS_CLUSTER_ADDRS %v", env.RedisClusterAddrs), nil
	case len(env.RedisSentinelAddrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: env.RedisMasterName, SentinelAddrs: env.RedisSentinelAddrs}),
			fmt.Sprintf("REDIS_SENTINEL_ADDRS %v (master %s)", env.RedisSentinelAddrs, env.RedisMasterName), nil
	case env.RedisURL.IsSet():
		opt, err := redis.ParseURL(env.RedisURL.Reveal())
		if err != nil {
			return nil, "REDIS_URL", fmt.Errorf("REDIS_URL: not a valid Redis URL")
		}
		return redis.NewClient(opt), "REDIS_URL (" + safeHost(env.RedisURL.Reveal()) + ")", nil
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
