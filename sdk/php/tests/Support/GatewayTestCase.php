<?php

declare(strict_types=1);

namespace Herald\Tests\Support;

use Herald\Client;
use Herald\ClientOptions;
use Herald\TokenIssuer;
use PHPUnit\Framework\TestCase;

/**
 * Tests against the real gateway the runner started. Channels and users get a per-test prefix, so tests
 * sharing the gateway never see each other's messages; WebSocket clients are closed after each test.
 */
abstract class GatewayTestCase extends TestCase
{
    /** @var list<WsClient> */
    protected array $sockets = [];
    private string $prefix = '';

    protected function setUp(): void
    {
        $this->prefix = 't' . bin2hex(random_bytes(4));
    }

    protected function tearDown(): void
    {
        foreach ($this->sockets as $s) {
            $s->close();
        }
        $this->sockets = [];
    }

    protected function client(?ClientOptions $options = null): Client
    {
        return new Client(Env::url(), Env::apiKey(), $options);
    }

    protected function tokens(?callable $clock = null): TokenIssuer
    {
        return new TokenIssuer(Env::jwtSecret(), $clock);
    }

    /** A channel (or user id) name unique to this test. */
    protected function name(string $base): string
    {
        return $this->prefix . '-' . $base;
    }

    /** A WebSocket connection as $userId (null: anonymous) subscribed to $subs, once `connected`. */
    protected function connect(?string $userId, array $subs = [], ?string $url = null): WsClient
    {
        $token = $userId === null ? null : $this->tokens()->forUser($userId);
        $ws = WsClient::connect($url ?? Env::wsUrl(), $token, $subs);
        $this->sockets[] = $ws;
        return $ws;
    }

    /**
     * Polls $check until it returns something other than null: for gateway state that has no event to
     * wait on (presence after a close). Fails after $timeout seconds.
     *
     * @template T
     * @param callable(): (T|null) $check
     * @return T
     */
    protected function eventually(callable $check, string $what, float $timeout = 10.0)
    {
        $deadline = microtime(true) + $timeout;
        for (;;) {
            $v = $check();
            if ($v !== null) {
                return $v;
            }
            if (microtime(true) > $deadline) {
                self::fail("timed out waiting for $what");
            }
            usleep(10_000);
        }
    }

    /** A WebSocket connection that sends $connect and has not been waited on. */
    protected function open(array $connect, ?string $url = null): WsClient
    {
        $ws = new WsClient($url ?? Env::wsUrl(), $connect);
        $this->sockets[] = $ws;
        return $ws;
    }
}
