<?php

declare(strict_types=1);

namespace Herald\Tests\Support;

/**
 * Where the runner (scripts/php-tests.mjs) started things, from environment variables. A missing
 * variable fails the test that needs it: these tests never skip silently.
 */
final class Env
{
    public static function get(string $name): string
    {
        $v = getenv($name);
        if (!\is_string($v) || $v === '') {
            throw new \RuntimeException("$name is not set: run the PHP tests through `node scripts/php-tests.mjs`, which starts the gateways");
        }
        return $v;
    }

    /** The memory-engine gateway's HTTP URL. */
    public static function url(): string
    {
        return self::get('HERALD_TEST_URL');
    }

    /** The memory-engine gateway's WebSocket URL. */
    public static function wsUrl(): string
    {
        return self::get('HERALD_TEST_WS_URL');
    }

    public static function apiKey(): string
    {
        return self::get('HERALD_TEST_API_KEY');
    }

    public static function jwtSecret(): string
    {
        return self::get('HERALD_TEST_JWT_SECRET');
    }

    /** The Redis the Redis-engine gateway uses. */
    public static function redisUrl(): string
    {
        return self::get('HERALD_TEST_REDIS_URL');
    }

    /** The Redis-engine gateway's key prefix. */
    public static function redisPrefix(): string
    {
        return self::get('HERALD_TEST_REDIS_PREFIX');
    }

    /** The Redis-engine gateway's HTTP URL. */
    public static function redisGatewayUrl(): string
    {
        return self::get('HERALD_TEST_REDIS_GATEWAY_URL');
    }

    /** The Redis-engine gateway's WebSocket URL. */
    public static function redisGatewayWsUrl(): string
    {
        return self::get('HERALD_TEST_REDIS_GATEWAY_WS_URL');
    }

    /** The seeds of the test Redis Cluster, host:port,host:port. */
    public static function redisCluster(): string
    {
        return self::get('HERALD_TEST_REDIS_CLUSTER');
    }

    /** The HTTP URL of the gateway on the test Redis Cluster (same prefix as the Redis-engine gateway). */
    public static function redisClusterGatewayUrl(): string
    {
        return self::get('HERALD_TEST_REDIS_CLUSTER_GATEWAY_URL');
    }

    /** The WebSocket URL of the gateway on the test Redis Cluster. */
    public static function redisClusterGatewayWsUrl(): string
    {
        return self::get('HERALD_TEST_REDIS_CLUSTER_GATEWAY_WS_URL');
    }

    public static function node(): string
    {
        $v = getenv('HERALD_TEST_NODE');
        return \is_string($v) && $v !== '' ? $v : 'node';
    }
}
