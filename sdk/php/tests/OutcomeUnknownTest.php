<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\ClientOptions;
use Herald\Exception\OutcomeUnknown;
use Herald\Exception\ServiceUnavailable;
use Herald\Exception\TransportError;
use Herald\Http\Response;
use Herald\Internal\Requester;
use Herald\Tests\Support\FakeTransport;
use PHPUnit\Framework\TestCase;

/**
 * 504 `engine_timeout` (the gateway sent a command to its engine and got no answer in time: the publish may
 * have happened) is retried with the same idempotency id only, and surfaces as OutcomeUnknown with the id.
 * The gateway does not send this answer yet, so a scripted transport plays it.
 */
final class OutcomeUnknownTest extends TestCase
{
    /** @var list<int> */
    private array $waits = [];

    /** A client on the fake transport, recording the backoff waits; $options are ClientOptions arguments. */
    private function client(FakeTransport $t, mixed ...$options): Client
    {
        return new Client('http://gateway.test:8080/', 'key-0123456789abcdef', new ClientOptions(...$options + [
            'transport' => $t,
            'sleep' => function (int $ms): void {
                $this->waits[] = $ms;
            },
        ]));
    }

    private static function published(string $channel, int $seq, bool $duplicate, ?string $id): Response
    {
        $body = ['results' => [$channel => ['seq' => $seq, 'epoch' => 'E1', 'duplicate' => $duplicate, 'subscribers' => 0]]];
        return FakeTransport::json(200, $id === null ? $body : ['id' => $id] + $body);
    }

    private static function engineTimeout(): Response
    {
        return FakeTransport::json(504, ['error' => ['code' => 'engine_timeout', 'message' => 'outcome unknown: retry with the same id']]);
    }

    public function testAnEngineTimeoutIsRetriedWithTheSameIdAndTheRetryIsNotADuplicate(): void
    {
        $t = new FakeTransport([self::engineTimeout(), self::published('news', 4, true, 'placeholder')]);
        $r = $this->client($t)->publish('news', 't', ['x' => 1]);

        self::assertCount(2, $t->requests);
        self::assertSame($t->requests[0]->body, $t->requests[1]->body, 'the same request, so the same id');
        self::assertStringStartsWith('php-', $t->body(1)['id']);
        self::assertSame(4, $r->first()->seq);
        self::assertFalse($r->first()->duplicate, 'the first attempt was published: this call\'s own message');
        self::assertCount(1, $this->waits);
    }

    public function testAnEngineTimeoutThatOutlastsTheRetriesIsOutcomeUnknownWithTheId(): void
    {
        $t = new FakeTransport([self::engineTimeout(), self::engineTimeout(), self::engineTimeout()]);
        try {
            $this->client($t)->publishToUser(42, 'notice', ['x' => 1], id: 'evt-42');
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            self::assertInstanceOf(ServiceUnavailable::class, $e, 'code that catches ServiceUnavailable keeps working');
            self::assertSame(['engine_timeout', 504], [$e->getErrorCode(), $e->getStatus()]);
            self::assertSame('evt-42', $e->getPublishId());
            self::assertSame(['evt-42'], $e->getPublishIds());
            self::assertSame($t->requests[0]->headers['X-Request-Id'], $e->getRequestId());
            self::assertStringContainsString('evt-42', $e->getMessage());
        }
        self::assertCount(3, $t->requests);
        foreach ([0, 1, 2] as $i) {
            self::assertSame('evt-42', $t->body($i)['id']);
        }
    }

    public function testAnUnknownOutcomeStaysUnknownWhenALaterAttemptFailsOtherwise(): void
    {
        $unavailable = FakeTransport::json(503, ['error' => ['code' => 'engine_unavailable', 'message' => 'down']]);
        $t = new FakeTransport([self::engineTimeout(), $unavailable, new TransportError('reset', 'transport_error')]);
        try {
            $this->client($t)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            // Attempt 1 may have published: a 503 or no answer later does not make it "nothing accepted".
            self::assertSame('engine_timeout', $e->getErrorCode());
            self::assertSame($t->body(0)['id'], $e->getPublishId());
            self::assertInstanceOf(TransportError::class, $e->getPrevious());
        }
        self::assertCount(3, $t->requests);
    }

    public function testWithoutAnIdAnEngineTimeoutIsNotRetried(): void
    {
        $t = new FakeTransport([self::engineTimeout()]);
        try {
            $this->client($t, retries: 0)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            self::assertNull($e->getPublishId());
            self::assertSame([null], $e->getPublishIds());
        }
        self::assertArrayNotHasKey('id', $t->body(0));

        // The Requester itself never repeats a publish of unknown outcome that lacks an id, even when told
        // the call may be retried.
        $t = new FakeTransport([self::engineTimeout(), self::published('news', 1, false, null)]);
        $requester = new Requester('http://gateway.test', 'key', $t, 1.0, 1.0, 2, 0, 0, function (int $ms): void {
            $this->waits[] = $ms;
        });
        try {
            $requester->call('POST', '/api/publish', ['channel' => 'news', 'type' => 't', 'payload' => ['x' => 1]], true, [null]);
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            self::assertSame([null], $e->getPublishIds());
        }
        self::assertCount(1, $t->requests);
    }

    public function testAProxys504IsServiceUnavailableNotAnUnknownOutcome(): void
    {
        $t = new FakeTransport([new Response(504, ['Content-Type' => 'text/html'], '<html>Gateway Timeout</html>')]);
        try {
            $this->client($t, retries: 0)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (ServiceUnavailable $e) {
            self::assertNotInstanceOf(OutcomeUnknown::class, $e);
            self::assertSame(['service_unavailable', 504], [$e->getErrorCode(), $e->getStatus()]);
        }
    }

    public function testABatchOfUnknownOutcomeCarriesEveryId(): void
    {
        $t = new FakeTransport([self::engineTimeout(), self::engineTimeout(), self::engineTimeout()]);
        try {
            $this->client($t)->publishMany([
                ['channel' => 'a', 'type' => 't', 'payload' => ['n' => 1]],
                ['user' => 7, 'type' => 't', 'payload' => ['n' => 2], 'id' => 'mine'],
            ]);
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            $sent = $t->body(2);
            self::assertSame([$sent[0]['id'], 'mine'], $e->getPublishIds());
            self::assertNull($e->getPublishId(), 'no single id for a batch');
        }
        self::assertSame($t->requests[0]->body, $t->requests[2]->body);
    }

    public function testEngineTimeoutsOnCallsThatPublishNothing(): void
    {
        // A read is safe to repeat: retried like any 5xx.
        $t = new FakeTransport([self::engineTimeout(), FakeTransport::json(200, ['channel' => 'news', 'subscribers' => 0, 'seq' => 3, 'epoch' => 'E'])]);
        self::assertSame(3, $this->client($t)->channel('news')->seq);
        self::assertCount(2, $t->requests);

        // Disconnecting one client is never repeated; the connection may or may not be closed.
        $t = new FakeTransport([self::engineTimeout()]);
        try {
            $this->client($t)->disconnectClient('abc');
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            self::assertSame([], $e->getPublishIds());
            self::assertNull($e->getPublishId());
        }
        self::assertCount(1, $t->requests);
    }
}
