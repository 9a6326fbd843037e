<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\NotFound;
use Herald\Result\Receipt;
use Herald\Tests\Support\GatewayTestCase;

/** Client::publishToUser(inbox: true), inbox(), removeFromInbox(), clearInbox() and receipt() against the real gateway. */
final class InboxTest extends GatewayTestCase
{
    public function testAPushToAnOfflineUserIsKeptDeliveredAtConnectAndAcknowledged(): void
    {
        $herald = $this->client();
        $user = $this->name('away');
        $result = $herald->publishToUser($user, 'notice', ['text' => 'your export is ready'], inbox: true, ttl: 3600, receipt: true);
        self::assertTrue($result->stored);
        self::assertFalse($result->live);
        self::assertFalse($result->online);
        self::assertSame(0, $result->seq);
        self::assertIsString($result->messageId);

        $kept = $herald->inbox($user);
        self::assertCount(1, $kept);
        self::assertSame(
            [$result->messageId, 'notice', "user:$user", ['text' => 'your export is ready'], true],
            [$kept[0]->id, $kept[0]->type, $kept[0]->channel, $kept[0]->payload, $kept[0]->receipt],
        );
        self::assertSame(3_600_000, $kept[0]->expires - $kept[0]->time);
        self::assertSame(Receipt::PENDING, $herald->receipt($result->messageId)->status);

        $ws = $this->connect($user);
        $frame = $ws->waitFrame(static fn (array $f) => isset($f['inbox']));
        self::assertSame(
            ['notice', "user:$user", ['text' => 'your export is ready'], 0, $result->messageId],
            [$frame['type'], $frame['channel'], $frame['payload'], $frame['seq'], $frame['inbox']],
        );
        $ws->send(['type' => 'ack', 'inbox' => [$result->messageId]]);
        self::assertSame(['type' => 'acked', 'inbox' => [$result->messageId]], $ws->waitFrame(static fn (array $f) => $f['type'] === 'acked'));

        $receipt = $herald->receipt($result->messageId);
        self::assertSame([Receipt::ACKNOWLEDGED, $user, 1], [$receipt->status, $receipt->userId, $receipt->delivered]);
        self::assertSame($ws->connected['client'], $receipt->acknowledgedBy);
        self::assertNotNull($receipt->acknowledgedAt);
        self::assertSame([], $herald->inbox($user));
    }

    public function testRemoveAndClear(): void
    {
        $herald = $this->client();
        $user = $this->name('rm');
        $first = $herald->publishToUser($user, 'a', ['n' => 1], inbox: true);
        $herald->publishToUser($user, 'b', ['n' => 2], inbox: true);
        $herald->publishToUser($user, 'c', ['n' => 3], inbox: true);
        $herald->removeFromInbox($user, (string) $first->messageId);
        self::assertSame(['b', 'c'], array_map(static fn ($m) => $m->type, $herald->inbox($user)));
        self::assertSame(['b'], array_map(static fn ($m) => $m->type, $herald->inbox($user, 1)));
        try {
            $herald->removeFromInbox($user, (string) $first->messageId);
            self::fail('removing twice must fail');
        } catch (NotFound $e) {
            self::assertSame('no_such_message', $e->getErrorCode());
        }
        self::assertSame(2, $herald->clearInbox($user));
        self::assertSame([], $herald->inbox($user));
        $this->expectException(NotFound::class);
        $herald->receipt('no-such-receipt');
    }

    public function testAPushToAUserOnlineIsBothLiveAndStored(): void
    {
        $herald = $this->client();
        $user = $this->name('here');
        $ws = $this->connect($user);
        $result = $herald->publishToUser($user, 'notice', ['text' => 'hi'], inbox: true);
        self::assertTrue($result->stored);
        self::assertTrue($result->live);
        self::assertTrue($result->online);
        self::assertSame($result->messageId, $ws->waitFrame(static fn (array $f) => isset($f['inbox']))['inbox']);
        $plain = $herald->publishToUser($user, 'notice', ['text' => 'plain']);
        self::assertFalse($plain->stored);
        self::assertTrue($plain->live);
        self::assertNull($plain->messageId);
    }

    public function testTtlAndReceiptNeedTheInbox(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->client()->publishToUser('42', 'notice', [], ttl: 60);
    }
}
