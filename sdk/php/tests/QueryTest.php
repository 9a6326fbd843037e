<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\ClientNotFound;
use Herald\Exception\ValidationFailed;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;
use Herald\Tests\Support\WsClient;

/** online(), channel(), history() and the disconnect calls against the real gateway. */
final class QueryTest extends GatewayTestCase
{
    public function testOnlineCountsConnectionsPerUser(): void
    {
        $alice = $this->name('alice');
        $bob = $this->name('bob');
        $this->connect($alice);
        $this->connect($alice);

        $r = $this->client()->online([$alice, $bob, $alice]);

        self::assertTrue($r->isOnline($alice));
        self::assertSame(2, $r->connections($alice));
        self::assertFalse($r->isOnline($bob));
        self::assertSame(0, $r->connections($bob));
        self::assertSame([$alice], $r->onlineUserIds());
        self::assertSame($bob, $r->users[$bob]->userId);
        self::assertFalse($r->isOnline('not-asked'));
    }

    public function testOnlineWithNumericIdsAndNoIds(): void
    {
        $r = $this->client()->online([4242424242, '17']);
        self::assertFalse($r->isOnline(4242424242));
        self::assertFalse($r->isOnline('17'));
        self::assertSame('4242424242', $r->users[4242424242]->userId);
        self::assertSame([], $this->client()->online([])->users);
    }

    public function testOnlineRefusesAnInvalidUserId(): void
    {
        try {
            $this->client()->online(['b c']);
            self::fail('no exception');
        } catch (ValidationFailed $e) {
            self::assertSame('invalid_field', $e->getErrorCode());
            self::assertSame('users', $e->getField());
        }
    }

    public function testChannelReportsSubscribersAndPosition(): void
    {
        $ch = $this->name('room');
        $empty = $this->client()->channel($ch);
        self::assertSame($ch, $empty->channel);
        self::assertSame(0, $empty->seq);
        self::assertSame(0, $empty->subscribers);

        $this->connect(null, [$ch]);
        $this->connect(null, [$ch]);
        $published = $this->client()->publish($ch, 't', ['x' => 1]);

        $info = $this->client()->channel($ch);
        self::assertSame(2, $info->subscribers);
        self::assertSame(1, $info->seq);
        self::assertSame($published->first()->epoch, $info->epoch);
    }

    public function testChannelListsThePresenceMembersOncePerUserWithTheirInfo(): void
    {
        $room = 'presence:' . $this->name('room');
        $ann = $this->name('ann');
        $bob = $this->name('bob');
        $tokens = $this->tokens();
        foreach ([[$ann, ['name' => 'Ann']], [$ann, ['name' => 'Ann']], [$bob, null]] as [$user, $info]) {
            $claims = $info === null ? [] : ['info' => $info];
            $this->sockets[] = WsClient::connect(Env::wsUrl(), $tokens->forUser($user, ['presence:*'], 3600, $claims), [$room]);
        }

        $info = $this->client()->channel($room);
        self::assertSame(3, $info->subscribers);
        self::assertSame(2, $info->users);
        self::assertEquals([$ann => ['name' => 'Ann'], $bob => null], $info->members);
        self::assertNull($this->client()->channel($this->name('plain'))->members);
    }

    public function testChannelNamesNeedingNoEscapingAndInvalidNames(): void
    {
        $ch = $this->name('a:b.c@d=e_f');
        $this->client()->publish($ch, 't', ['x' => 1]);
        self::assertSame(1, $this->client()->channel($ch)->seq);

        try {
            $this->client()->channel('has space/and slash');
            self::fail('no exception');
        } catch (ValidationFailed $e) {
            self::assertSame('invalid_channel', $e->getErrorCode());
            self::assertSame('channel', $e->getField());
        }
    }

    public function testHistoryPagesAndRecovery(): void
    {
        $ch = $this->name('hist');
        $client = $this->client();
        for ($i = 1; $i <= 5; $i++) {
            $client->publish($ch, 'step', ['i' => $i]);
        }

        $all = $client->history($ch);
        self::assertTrue($all->complete);
        self::assertSame(5, $all->seq);
        self::assertSame([1, 2, 3, 4, 5], array_map(static fn ($m) => $m->seq, $all->messages));
        self::assertSame(['type' => 'step', 'channel' => $ch, 'payload' => ['i' => 3], 'seq' => 3], (array) $all->messages[2]);
        self::assertSame(5, $all->lastSeq());

        $newest = $client->history($ch, limit: 2);
        self::assertSame([4, 5], array_map(static fn ($m) => $m->seq, $newest->messages));

        $page = $client->history($ch, 1, $all->epoch, 2);
        self::assertTrue($page->complete);
        self::assertSame([2, 3], array_map(static fn ($m) => $m->seq, $page->messages));
        $rest = $client->history($ch, $page->lastSeq(), $all->epoch);
        self::assertSame([4, 5], array_map(static fn ($m) => $m->seq, $rest->messages));

        $otherEpoch = $client->history($ch, 1, 'not-the-epoch');
        self::assertFalse($otherEpoch->complete);
        self::assertSame([], $otherEpoch->messages);
        self::assertNull($otherEpoch->lastSeq());

        $future = $client->history($ch, 99);
        self::assertFalse($future->complete);
    }

    public function testTheChannelsDotAndDotDotAreReadLikeAnyOther(): void
    {
        // Valid names that a path could not carry as they are: curl removes the dot segment `..` before sending.
        $client = $this->client();
        $marker = $this->name('dots');
        $dotDot = $client->publish('..', 'note', ['marker' => $marker]);
        $dot = $client->publish('.', 'note', ['marker' => $marker]);

        $page = $client->history('..', limit: 1);
        self::assertSame($dotDot->channels['..']->seq, $page->seq);
        self::assertSame(['type' => 'note', 'channel' => '..', 'payload' => ['marker' => $marker], 'seq' => $page->seq], (array) $page->messages[0]);
        self::assertSame($dot->channels['.']->seq, $client->channel('.')->seq);
        self::assertSame([], $client->inbox('..'));
    }

    public function testHistoryRefusesAnInvalidLimit(): void
    {
        try {
            $this->client()->history($this->name('h'), null, null, 5000);
            self::fail('no exception');
        } catch (ValidationFailed $e) {
            self::assertSame('invalid_field', $e->getErrorCode());
            self::assertSame('limit', $e->getField());
        }
    }

    public function testDisconnectUserClosesEveryConnectionWithTheCode(): void
    {
        $user = $this->name('leaver');
        $a = $this->connect($user);
        $b = $this->connect($user);

        self::assertSame(2, $this->client()->disconnectUser($user, 4000, 'come back'));

        self::assertSame(['code' => 4000, 'reason' => 'come back'], $a->waitClose());
        self::assertSame(4000, $b->waitClose()['code']);
        self::assertSame(0, $this->client()->disconnectUser($this->name('nobody')));
    }

    public function testDisconnectDefaultsTo4509(): void
    {
        $user = $this->name('kicked');
        $ws = $this->connect($user);
        self::assertSame(1, $this->client()->disconnect(user: $user));
        self::assertSame(4509, $ws->waitClose()['code']);
    }

    public function testDisconnectClientClosesOneConnection(): void
    {
        $user = $this->name('two-tabs');
        $a = $this->connect($user);
        $b = $this->connect($user);

        self::assertSame(1, $this->client()->disconnectClient($a->connected['client'], 1000, 'bye'));

        self::assertSame(['code' => 1000, 'reason' => 'bye'], $a->waitClose());
        $this->eventually(fn () => $this->client()->online([$user])->connections($user) === 1 ? true : null, 'one connection left');
        self::assertNotNull($b->connected);
    }

    public function testDisconnectAMissingClientThrowsClientNotFound(): void
    {
        try {
            $this->client()->disconnectClient('nope-' . $this->name('x'));
            self::fail('no exception');
        } catch (ClientNotFound $e) {
            self::assertSame('no_such_client', $e->getErrorCode());
            self::assertSame(404, $e->getStatus());
        }
    }

    public function testDisconnectRefusesAnInvalidCode(): void
    {
        try {
            $this->client()->disconnectUser($this->name('u'), 3000);
            self::fail('no exception');
        } catch (ValidationFailed $e) {
            self::assertSame('invalid_field', $e->getErrorCode());
            self::assertSame('code', $e->getField());
        }
    }

    public function testDisconnectNeedsExactlyOneTarget(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->client()->disconnect(user: '1', client: 'x');
    }
}
