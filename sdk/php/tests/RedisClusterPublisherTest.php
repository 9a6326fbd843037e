<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\RedisPublisher;
use Herald\RedisPublisherOptions;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;
use Herald\Tests\Support\WsClient;

/**
 * RedisPublisher with phpredis's RedisCluster against a real Redis Cluster (three masters, started by
 * scripts/php-tests.mjs) and a gateway on it: each publish runs on its channel's slot, the message goes out
 * with sharded pub/sub, and seq, history, idempotency and presence are the ones the gateway sees.
 */
final class RedisClusterPublisherTest extends GatewayTestCase
{
    private ?\RedisCluster $cluster = null;

    protected function tearDown(): void
    {
        $this->cluster?->close();
        parent::tearDown();
    }

    private function cluster(): \RedisCluster
    {
        return $this->cluster ??= new \RedisCluster(null, explode(',', Env::redisCluster()), 2.0, 2.0);
    }

    private function publisher(mixed ...$options): RedisPublisher
    {
        $options += ['prefix' => Env::redisPrefix(), 'sharded' => true];
        return new RedisPublisher($this->cluster(), new RedisPublisherOptions(...$options));
    }

    private function http(): Client
    {
        return new Client(Env::redisClusterGatewayUrl(), Env::apiKey());
    }

    private function connectCluster(?string $userId, array $subs = []): WsClient
    {
        return $this->connect($userId, $subs, Env::redisClusterGatewayWsUrl());
    }

    public function testPublishesOnEveryMasterReachSubscribersAndShareSeqWithTheHttpApi(): void
    {
        $channels = array_map(fn (int $i) => $this->name("room$i"), range(0, 7));
        $ws = $this->connectCluster(null, $channels);
        $publisher = $this->publisher();
        self::assertSame($publisher->scriptSha(), $publisher->load());

        foreach ($channels as $i => $ch) {
            $viaRedis = $publisher->publish($ch, 'm', ['i' => $i]);
            self::assertSame(1, $viaRedis->first()->seq);
            self::assertSame(1, $viaRedis->first()->subscribers);
            self::assertSame(2, $this->http()->publish($ch, 'm', ['i' => $i, 'via' => 'http'])->first()->seq);
        }
        // The keys of the eight channels are spread over the masters (each publish ran on its own slot).
        $slotOf = function (string $ch): int {
            $key = Env::redisPrefix() . ":{{$ch}}:meta";
            return (int) $this->cluster()->rawCommand($key, 'CLUSTER', 'KEYSLOT', $key);
        };
        $slots = array_unique(array_map($slotOf, $channels));
        self::assertGreaterThan(1, \count($slots));

        foreach ($channels as $i => $ch) {
            self::assertSame(['type' => 'm', 'channel' => $ch, 'payload' => ['i' => $i], 'seq' => 1], $ws->waitMessage($ch));
            self::assertSame(2, $ws->waitMessage($ch)['seq']);
            self::assertSame(2, $this->http()->channel($ch)->seq);
        }
    }

    public function testIdempotencyAndPresenceWorkOnTheCluster(): void
    {
        $user = $this->name('u7');
        $tab = $this->connectCluster($user);
        $id = $this->name('evt');

        $first = $this->publisher()->publishToUser($user, 'notice', ['n' => 1], $id);
        $again = $this->publisher()->publishToUser($user, 'notice', ['n' => 1], $id);
        $viaHttp = $this->http()->publish("user:$user", 'notice', ['n' => 1], id: $id);

        self::assertTrue($first->online);
        self::assertFalse($first->isDuplicate());
        self::assertTrue($again->isDuplicate());
        self::assertTrue($viaHttp->isDuplicate());
        self::assertSame(1, $again->seq);
        self::assertSame(['n' => 1], $tab->waitMessage("user:$user")['payload']);
        self::assertFalse($this->publisher()->publishToUser($this->name('nobody'), 'notice', [])->online);
    }
}
