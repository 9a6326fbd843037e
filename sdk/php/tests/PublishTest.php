<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\ClientOptions;
use Herald\Exception\ClientNotFound;
use Herald\Exception\ValidationFailed;
use Herald\Result\ClientPublishResult;
use Herald\Result\PublishResult;
use Herald\Result\UserPublishResult;
use Herald\Tests\Support\GatewayTestCase;

/** publish(), publishToUser(), publishToClient() and publishMany() against the real gateway. */
final class PublishTest extends GatewayTestCase
{
    public function testPublishToOneChannelReachesSubscribersWithSeq(): void
    {
        $news = $this->name('news');
        $ws = $this->connect(null, [$news]);

        $first = $this->client()->publish($news, 'headline', ['title' => 'Hello']);
        $second = $this->client()->publish($news, 'headline', ['title' => 'Again']);

        self::assertInstanceOf(PublishResult::class, $first);
        self::assertSame(1, $first->channel($news)->seq);
        self::assertSame(2, $second->first()->seq);
        self::assertSame($first->first()->epoch, $second->first()->epoch);
        self::assertFalse($first->first()->duplicate);
        self::assertSame(1, $first->first()->subscribers);
        self::assertNull($first->first()->online, 'online is only reported for user: channels');

        $m = $ws->waitMessage($news);
        self::assertSame(['type' => 'headline', 'channel' => $news, 'payload' => ['title' => 'Hello'], 'seq' => 1], $m);
        self::assertSame(2, $ws->waitMessage($news)['seq']);
    }

    public function testPublishToSeveralChannelsGivesEachItsOwnSeq(): void
    {
        [$a, $b] = [$this->name('a'), $this->name('b')];
        $this->client()->publish($a, 't', ['n' => 0]);

        $r = $this->client()->publish([$a, $b], 't', ['n' => 1]);

        self::assertSame([$a, $b], array_map('strval', array_keys($r->channels)));
        self::assertSame(2, $r->channel($a)->seq);
        self::assertSame(1, $r->channel($b)->seq);
        self::assertSame($a, $r->channel($a)->channel);
    }

    public function testTheSameIdPublishesOnceAndIsReturned(): void
    {
        [$a, $b] = [$this->name('a'), $this->name('b')];
        $ws = $this->connect(null, [$a]);
        $id = $this->name('evt-1');

        $first = $this->client()->publish([$a, $b], 'headline', ['title' => 'Both'], id: $id);
        $again = $this->client()->publish([$a, $b], 'headline', ['title' => 'Both'], id: $id);

        self::assertSame($id, $first->id);
        self::assertSame($id, $again->id);
        self::assertFalse($first->isDuplicate());
        self::assertTrue($again->isDuplicate());
        self::assertSame($first->channel($a)->seq, $again->channel($a)->seq);
        self::assertSame(1, $this->client()->channel($a)->seq, 'published once');
        self::assertSame(1, $ws->waitMessage($a)['seq']);
    }

    public function testWithRetriesOnAnIdIsGeneratedAndWithoutRetriesNone(): void
    {
        $ch = $this->name('ids');
        $generated = $this->client()->publish($ch, 't', ['x' => 1]);
        self::assertIsString($generated->id);
        self::assertMatchesRegularExpression('/^[\w.:-]{1,200}$/', $generated->id);
        self::assertNotSame($generated->id, $this->client()->publish($ch, 't', ['x' => 1])->id);

        self::assertNull($this->client(new ClientOptions(retries: 0))->publish($ch, 't', ['x' => 1])->id);
    }

    public function testPayloadShapes(): void
    {
        $ch = $this->name('shapes');
        $ws = $this->connect(null, [$ch]);
        $client = $this->client();

        $client->publish($ch, 't', []);
        $client->publish($ch, 't', [1, 'two', ['three' => 3.0]]);
        $client->publish($ch, 't', (object) ['a' => (object) [], 'b' => [], 'url' => 'https://x.test/a/b']);
        $client->publish($ch, 't', new \ArrayObject(['k' => 'v']));
        $client->publish($ch, 't', new class () implements \JsonSerializable {
            public function jsonSerialize(): mixed
            {
                return ['serialized' => true];
            }
        });

        // The raw frames, so that `{}` and `[]` and `3.0` can be told apart.
        $payloads = [];
        for ($i = 0; $i < 5; $i++) {
            $raw = $ws->waitMessageRaw($ch);
            self::assertSame(1, preg_match('/"payload":(.*),"seq":\d+}$/', $raw, $m), $raw);
            $payloads[] = $m[1];
        }
        self::assertSame('{}', $payloads[0], 'an empty PHP array is sent as {}');
        self::assertSame('[1,"two",{"three":3}]', $payloads[1], 'JavaScript has no 3.0');
        self::assertSame('{"a":{},"b":[],"url":"https://x.test/a/b"}', $payloads[2]);
        self::assertSame('{"k":"v"}', $payloads[3]);
        self::assertSame('{"serialized":true}', $payloads[4]);

        $history = $client->history($ch);
        self::assertSame([], $history->messages[0]->payload);
        self::assertSame(['k' => 'v'], $history->messages[3]->payload);
    }

    public function testPublishToUserReportsOnline(): void
    {
        $user = $this->name('u42');
        $tab1 = $this->connect($user);
        $tab2 = $this->connect($user);

        $r = $this->client()->publishToUser($user, 'notice', ['text' => 'hi']);

        self::assertInstanceOf(UserPublishResult::class, $r);
        self::assertTrue($r->online);
        self::assertSame($user, $r->userId);
        self::assertSame(2, $r->subscribers);
        self::assertSame(1, $r->seq);
        self::assertFalse($r->duplicate);
        self::assertSame($r->epoch, $r->channel("user:$user")->epoch);
        foreach ([$tab1, $tab2] as $tab) {
            self::assertSame(['type' => 'notice', 'channel' => "user:$user", 'payload' => ['text' => 'hi'], 'seq' => 1], $tab->waitMessage("user:$user"));
        }
    }

    public function testPublishToAnOfflineUserReportsOnlineFalseAndKeepsHistory(): void
    {
        $user = $this->name('nobody');
        $r = $this->client()->publishToUser($user, 'notice', ['n' => 1], id: $this->name('n1'));

        self::assertFalse($r->online);
        self::assertSame(0, $r->subscribers);
        self::assertSame($this->name('n1'), $r->id);
        self::assertSame(1, $this->client()->history("user:$user")->seq);
    }

    public function testPublishToUserAcceptsIntIds(): void
    {
        $r = $this->client()->publishToUser(987654321, 'notice', ['n' => 1]);
        self::assertSame('987654321', $r->userId);
        self::assertArrayHasKey('user:987654321', $r->channels);
    }

    public function testPublishToClientDeliversToThatConnectionOnly(): void
    {
        $ws = $this->connect(null);
        $other = $this->connect(null);
        $clientId = $ws->connected['client'];

        $r = $this->client()->publishToClient($clientId, 'kick', ['reason' => 'x'], id: $this->name('d1'));

        self::assertInstanceOf(ClientPublishResult::class, $r);
        self::assertTrue($r->delivered);
        self::assertSame($clientId, $r->clientId);
        self::assertSame($this->name('d1'), $r->id);
        self::assertSame(['type' => 'kick', 'channel' => "client:$clientId", 'payload' => ['reason' => 'x'], 'seq' => 0], $ws->waitMessage("client:$clientId"));
        self::assertCount(0, array_filter($other->events, static fn ($e) => isset($e['frame']['seq'])));
    }

    public function testPublishToAMissingClientThrowsClientNotFound(): void
    {
        try {
            $this->client()->publishToClient('nope-' . $this->name('c'), 'kick', ['x' => 1]);
            self::fail('no exception');
        } catch (ClientNotFound $e) {
            self::assertSame('no_such_client', $e->getErrorCode());
            self::assertSame(404, $e->getStatus());
            self::assertSame('client', $e->getField());
            self::assertMatchesRegularExpression('/^php-[0-9a-f]{16}$/', (string) $e->getRequestId());
        }
    }

    public function testPublishToAClientThatDisconnectedThrowsClientNotFound(): void
    {
        $ws = $this->connect(null);
        $clientId = $ws->connected['client'];
        $ws->close();
        $this->expectException(ClientNotFound::class);
        // The gateway may take a moment to drop the connection: the first publish may still reach it.
        $deadline = microtime(true) + 10;
        while (microtime(true) < $deadline) {
            $this->client()->publishToClient($clientId, 'kick', ['x' => 1]);
        }
    }

    public function testPublishManyInOneRequest(): void
    {
        $ch = $this->name('many');
        $user = $this->name('u');
        $ws = $this->connect(null);
        $clientId = $ws->connected['client'];

        $out = $this->client()->publishMany([
            ['channel' => $ch, 'type' => 't', 'payload' => ['i' => 0], 'id' => $this->name('a1')],
            ['client' => 'nope', 'type' => 't', 'payload' => [1]],
            ['client' => $clientId, 'type' => 't', 'payload' => ['i' => 2]],
            ['user' => $user, 'type' => 't', 'payload' => ['i' => 3]],
            ['channels' => [$ch, $this->name('other')], 'type' => 't', 'payload' => ['i' => 4]],
        ]);

        self::assertCount(5, $out);
        self::assertInstanceOf(PublishResult::class, $out[0]);
        self::assertSame($this->name('a1'), $out[0]->id);
        self::assertSame(1, $out[0]->channel($ch)->seq);
        self::assertInstanceOf(ClientPublishResult::class, $out[1]);
        self::assertFalse($out[1]->delivered);
        self::assertSame('no_such_client', $out[1]->errorCode);
        self::assertInstanceOf(ClientPublishResult::class, $out[2]);
        self::assertTrue($out[2]->delivered);
        self::assertInstanceOf(UserPublishResult::class, $out[3]);
        self::assertFalse($out[3]->online);
        self::assertSame(2, $out[4]->channel($ch)->seq);
        self::assertSame(['i' => 2], $ws->waitMessage("client:$clientId")['payload']);
    }

    public function testPublishManyWithOneInvalidItemPublishesNothing(): void
    {
        $ch = $this->name('all-or-nothing');
        try {
            $this->client()->publishMany([
                ['channel' => $ch, 'type' => 't', 'payload' => ['i' => 0]],
                ['channel' => $ch, 'type' => 'ping', 'payload' => ['i' => 1]],
            ]);
            self::fail('no exception');
        } catch (ValidationFailed $e) {
            self::assertSame('reserved_type', $e->getErrorCode());
            self::assertSame('[1].type', $e->getField());
        }
        self::assertSame(0, $this->client()->channel($ch)->seq);
    }
}
