<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\Exception\HeraldException;
use Herald\Exception\ServiceUnavailable;
use Herald\Exception\ValidationFailed;
use Herald\RedisPublisher;
use Herald\RedisPublisherOptions;
use Herald\Result\UserPublishResult;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;

/**
 * RedisPublisher against a Redis-engine gateway: messages published straight into Redis with the
 * gateway's own Lua script reach WebSocket clients, share seq, history and idempotency with the HTTP API.
 */
final class RedisPublisherTest extends GatewayTestCase
{
    private ?\Redis $redis = null;

    protected function tearDown(): void
    {
        $this->redis?->close();
        parent::tearDown();
    }

    private function redis(): \Redis
    {
        if ($this->redis === null) {
            $parts = parse_url(Env::redisUrl());
            $this->redis = new \Redis();
            $this->redis->connect($parts['host'] ?? '127.0.0.1', $parts['port'] ?? 6379, 2.0);
            $db = (int) ltrim($parts['path'] ?? '', '/');
            if ($db > 0) {
                $this->redis->select($db);
            }
        }
        return $this->redis;
    }

    /** A publisher on the test gateway's Redis and prefix; $options are RedisPublisherOptions arguments. */
    private function publisher(mixed ...$options): RedisPublisher
    {
        return new RedisPublisher($this->redis(), new RedisPublisherOptions(...$options + ['prefix' => Env::redisPrefix()]));
    }

    /** The HTTP API of the Redis-engine gateway. */
    private function http(): Client
    {
        return new Client(Env::redisGatewayUrl(), Env::apiKey());
    }

    private function connectRedis(?string $userId, array $subs = []): \Herald\Tests\Support\WsClient
    {
        return $this->connect($userId, $subs, Env::redisGatewayWsUrl());
    }

    public function testTheDefaultScriptIsTheSdksCopyOfTheGatewaysScript(): void
    {
        // packages/server/test/php-sdk-package.test.ts keeps the copy identical to the gateway's file.
        $path = RedisPublisher::defaultScriptPath();
        self::assertSame(realpath(__DIR__ . '/../resources/publish.lua'), realpath($path));
        self::assertSame(sha1_file(__DIR__ . '/../../../packages/server/lua/publish.lua'), sha1_file($path));
        self::assertSame(sha1_file($path), $this->publisher()->scriptSha());
        self::assertSame(sha1_file($path), $this->publisher()->load());
    }

    public function testAPublishReachesSubscribersAndSharesSeqAndHistoryWithTheHttpApi(): void
    {
        $ch = $this->name('news');
        $ws = $this->connectRedis(null, [$ch]);

        $viaRedis = $this->publisher()->publish($ch, 'headline', ['title' => 'from Redis']);
        $viaHttp = $this->http()->publish($ch, 'headline', ['title' => 'from HTTP']);
        $again = $this->publisher()->publish($ch, 'headline', ['title' => 'Redis again']);

        self::assertSame(1, $viaRedis->channel($ch)->seq);
        self::assertSame(2, $viaHttp->first()->seq);
        self::assertSame(3, $again->first()->seq);
        self::assertSame($viaRedis->first()->epoch, $viaHttp->first()->epoch);
        self::assertSame(1, $viaRedis->first()->subscribers);
        self::assertNull($viaRedis->first()->online);

        self::assertSame(['type' => 'headline', 'channel' => $ch, 'payload' => ['title' => 'from Redis'], 'seq' => 1], $ws->waitMessage($ch));
        self::assertSame('from HTTP', $ws->waitMessage($ch)['payload']['title']);
        self::assertSame(3, $ws->waitMessage($ch)['seq']);

        $history = $this->http()->history($ch);
        self::assertSame(['from Redis', 'from HTTP', 'Redis again'], array_map(static fn ($m) => $m->payload['title'], $history->messages));
        self::assertSame(3, $this->http()->channel($ch)->seq);
    }

    public function testTheFrameIsByteForByteWhatTheHttpApiWouldSend(): void
    {
        $ch = $this->name('bytes');
        $ws = $this->connectRedis(null, [$ch]);
        $payload = ['t' => "😀 中文 a/b \"q\"", 'n' => [1, 2.5, null, true], 'o' => []];

        $this->publisher()->publish($ch, 'x', $payload);
        $this->http()->publish($ch, 'x', $payload);

        $viaRedis = $ws->waitMessageRaw($ch);
        $viaHttp = $ws->waitMessageRaw($ch);
        self::assertSame(str_replace('"seq":1}', '"seq":2}', $viaRedis), $viaHttp);
    }

    public function testSeveralChannelsEachGetTheirSeq(): void
    {
        [$a, $b] = [$this->name('a'), $this->name('b')];
        $this->publisher()->publish($a, 't', ['i' => 0]);
        $r = $this->publisher()->publish([$a, $b, $a], 't', ['i' => 1], id: $this->name('multi'));

        self::assertSame($this->name('multi'), $r->id);
        self::assertSame([$a, $b], array_map('strval', array_keys($r->channels)));
        self::assertSame(2, $r->channel($a)->seq);
        self::assertSame(1, $r->channel($b)->seq);
    }

    public function testIdempotencyIdsAreSharedWithTheHttpApi(): void
    {
        $ch = $this->name('idem');
        $id = $this->name('evt');

        $first = $this->http()->publish($ch, 't', ['x' => 1], id: $id);
        $viaRedis = $this->publisher()->publish($ch, 't', ['x' => 1], id: $id);
        $again = $this->publisher()->publish($ch, 't', ['x' => 1], id: $id);

        self::assertFalse($first->isDuplicate());
        self::assertTrue($viaRedis->isDuplicate());
        self::assertTrue($again->isDuplicate());
        self::assertSame($first->first()->seq, $viaRedis->first()->seq);
        self::assertSame(1, $this->http()->channel($ch)->seq);
    }

    public function testPublishToUserReportsOnline(): void
    {
        $user = $this->name('u42');
        $tab = $this->connectRedis($user);

        $online = $this->publisher()->publishToUser($user, 'notice', ['text' => 'hi']);
        $offline = $this->publisher()->publishToUser($this->name('nobody'), 'notice', ['text' => 'hi']);

        self::assertInstanceOf(UserPublishResult::class, $online);
        self::assertTrue($online->online);
        self::assertSame(1, $online->subscribers);
        self::assertSame(1, $online->seq);
        self::assertFalse($offline->online);
        self::assertSame(0, $offline->subscribers);
        self::assertSame(['type' => 'notice', 'channel' => "user:$user", 'payload' => ['text' => 'hi'], 'seq' => 1], $tab->waitMessage("user:$user"));

        $noPresence = $this->publisher(presence: false)->publishToUser($user, 'notice', ['n' => 2]);
        self::assertSame(2, $noPresence->seq);
        self::assertSame(0, $noPresence->subscribers);
    }

    public function testAFlushedScriptCacheFallsBackToEval(): void
    {
        $ch = $this->name('noscript');
        $ws = $this->connectRedis(null, [$ch]);
        $publisher = $this->publisher();
        $publisher->publish($ch, 't', ['n' => 1]);

        $this->redis()->script('flush');
        self::assertSame([0], $this->redis()->script('exists', $publisher->scriptSha()));

        self::assertSame(2, $publisher->publish($ch, 't', ['n' => 2])->first()->seq);
        self::assertSame([1], $this->redis()->script('exists', $publisher->scriptSha()));
        self::assertSame(1, $ws->waitMessage($ch)['seq']);
        self::assertSame(['n' => 2], $ws->waitMessage($ch)['payload']);
    }

    public function testUtf8ThroughRedis(): void
    {
        $ch = $this->name('utf8');
        $ws = $this->connectRedis(null, [$ch]);

        $this->publisher()->publish($ch, 'text', ['ok' => 'Grüße 👋🏽 中文 日本語', 'bad' => "a\xFF\xFE \xF0\x9F\x98\x80"]);

        $m = $ws->waitMessage($ch);
        self::assertSame('Grüße 👋🏽 中文 日本語', $m['payload']['ok']);
        self::assertSame("a\u{FFFD}\u{FFFD} 😀", $m['payload']['bad']);
    }

    /** A payload nested `$depth` levels deep. */
    private static function nested(int $depth): array
    {
        $v = ['leaf' => true];
        for ($i = 1; $i < $depth; $i++) {
            $v = [$v];
        }
        return $v;
    }

    public function testAClientKeyPrefixDoesNotMoveTheGatewaysKeys(): void
    {
        // Laravel gives its phpredis connections a prefix (OPT_PREFIX): the publish must still reach the gateway.
        $ch = $this->name('prefixed');
        $ws = $this->connectRedis('u-prefixed', [$ch]);
        $this->redis()->setOption(\Redis::OPT_PREFIX, 'myapp_database_');
        try {
            $r = $this->publisher()->publish($ch, 'headline', ['n' => 1]);
            self::assertSame(1, $r->first()->seq);
            self::assertSame(1, $r->first()->subscribers);
            self::assertTrue($this->publisher()->publishToUser('u-prefixed', 'notice', ['n' => 2])->online);
            // The client's prefix is its own again afterwards.
            self::assertSame('myapp_database_', $this->redis()->getOption(\Redis::OPT_PREFIX));
        } finally {
            $this->redis()->setOption(\Redis::OPT_PREFIX, '');
        }
        self::assertSame(1, $ws->waitMessage($ch)['seq']);
        self::assertSame(1, $this->http()->channel($ch)->seq);
        self::assertSame([], $this->redis()->keys('myapp_database_' . Env::redisPrefix() . '*'));
    }

    public function testTheGatewaysOwnChannelsAreRefusedAsOverHttp(): void
    {
        foreach ([['client:abc', 'invalid_channel', ValidationFailed::class], ['herald:admin', 'forbidden', HeraldException::class]] as [$ch, $code, $class]) {
            try {
                $this->publisher()->publish($ch, 'stats', ['forged' => true]);
                self::fail("$ch accepted");
            } catch (HeraldException $e) {
                self::assertInstanceOf($class, $e);
                self::assertSame([$code, 'channel'], [$e->getErrorCode(), $e->getField()]);
            }
        }
        self::assertSame([], $this->redis()->keys(Env::redisPrefix() . ':{herald:*'));
        self::assertSame([], $this->redis()->keys(Env::redisPrefix() . ':{client:*'));
    }

    public function testInvalidInputIsAValidationErrorAndWritesNothing(): void
    {
        $ch = $this->name('bad');
        $cases = [
            ['invalid_channel', 'channel', fn () => $this->publisher()->publish('no spaces', 't', ['x' => 1])],
            ['invalid_channel', 'channel', fn () => $this->publisher()->publish('a{b}', 't', ['x' => 1])],
            ['invalid_field', 'type', fn () => $this->publisher()->publish($ch, 'bad type', ['x' => 1])],
            ['reserved_type', 'type', fn () => $this->publisher()->publish($ch, 'subscribed', ['x' => 1])],
            ['invalid_channel', 'channel', fn () => $this->publisher()->publishToUser('has space', 't', ['x' => 1])],
            ['invalid_channel', 'channel', fn () => $this->publisher()->publish('USER:42', 't', ['x' => 1])],
            ['payload_too_deep', 'payload', fn () => $this->publisher()->publish($ch, 't', self::nested(65))],
        ];
        foreach ($cases as [$code, $field, $call]) {
            try {
                $call();
                self::fail("no exception for $code");
            } catch (ValidationFailed $e) {
                self::assertSame([$code, $field], [$e->getErrorCode(), $e->getField()]);
            }
        }
        self::assertSame(0, $this->http()->channel($ch)->seq);
    }

    public function testProgrammingErrorsAreInvalidArgumentExceptions(): void
    {
        $json = new class () implements \JsonSerializable {
            public function jsonSerialize(): mixed
            {
                return 42;
            }
        };
        $cases = [
            fn () => $this->publisher()->publish('ok', 't', $json),
            fn () => $this->publisher()->publish([], 't', ['x' => 1]),
            fn () => $this->publisher()->publish('ok', 't', ['x' => 1], id: ''),
            fn () => $this->publisher()->publish('ok', 't', ['x' => 1], ['ttl' => 1]),
            fn () => $this->publisher(script: '/nonexistent/publish.lua'),
            fn () => $this->publisher(prefix: 'a{b}'),
            fn () => $this->publisher(historyTtl: 0),
            fn () => $this->publisher()->publish('ok', 't', ['x' => 1], id: str_repeat('i', 201)),
            fn () => $this->publisher()->publish('ok', 't', ['x' => 1], id: "evt-\xFF"),
            fn () => RedisPublisher::fromUrl('redis://127.0.0.1:6379/notadb'),
        ];
        foreach ($cases as $i => $call) {
            try {
                $call();
                self::fail("case $i accepted");
            } catch (\InvalidArgumentException $e) {
                self::assertNotInstanceOf(HeraldException::class, $e);
            }
        }
    }

    public function testRedisDownIsServiceUnavailable(): void
    {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($s);
        $address = (string) stream_socket_get_name($s, false);
        fclose($s);

        try {
            RedisPublisher::fromUrl("redis://$address");
            self::fail('no exception');
        } catch (ServiceUnavailable $e) {
            self::assertSame('engine_unavailable', $e->getErrorCode());
        }

        // A client that was connected and then lost its server: a listener that is closed after the
        // connect, so the next command finds the connection reset and nothing to reconnect to.
        $server = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($server);
        [$host, $port] = explode(':', (string) stream_socket_get_name($server, false));
        $redis = new \Redis();
        self::assertTrue($redis->connect($host, (int) $port, 2.0, null, 0, 2.0));
        $publisher = new RedisPublisher($redis, new RedisPublisherOptions(prefix: Env::redisPrefix()));
        fclose($server);
        try {
            $publisher->publish($this->name('down'), 't', ['x' => 1]);
            self::fail('no exception');
        } catch (ServiceUnavailable $e) {
            self::assertSame('engine_unavailable', $e->getErrorCode());
            self::assertSame(0, $e->getStatus());
        }
    }

    public function testFromUrl(): void
    {
        $ch = $this->name('url');
        $publisher = RedisPublisher::fromUrl(Env::redisUrl(), new RedisPublisherOptions(prefix: Env::redisPrefix()));
        self::assertSame(1, $publisher->publish($ch, 't', ['x' => 1])->first()->seq);
        self::assertSame(1, $this->http()->channel($ch)->seq);

        // A database Redis refuses is an error, not database 0; and a password never shows in a message.
        try {
            $parts = parse_url(Env::redisUrl());
            RedisPublisher::fromUrl(sprintf('redis://%s:%d/99999', $parts['host'] ?? '127.0.0.1', $parts['port'] ?? 6379));
            self::fail('database 99999 selected');
        } catch (ServiceUnavailable $e) {
            self::assertStringContainsString('99999', $e->getMessage());
        }
        try {
            RedisPublisher::fromUrl('redis//:S3cr3tRedisPass@127.0.0.1:6379');
            self::fail('no exception');
        } catch (\InvalidArgumentException $e) {
            self::assertStringNotContainsString('S3cr3t', $e->getMessage());
        }
        $this->expectException(\InvalidArgumentException::class);
        RedisPublisher::fromUrl('http://127.0.0.1:6379');
    }
}
