<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\ClientOptions;
use Herald\Exception\HeraldException;
use Herald\Exception\OutcomeUnknown;
use Herald\Exception\ServiceUnavailable;
use Herald\Exception\TransportError;
use Herald\Exception\ValidationFailed;
use Herald\Http\Response;
use Herald\Tests\Support\FakeTransport;
use Herald\Version;
use PHPUnit\Framework\TestCase;

/** Retries, backoff, request shape and response parsing, with a scripted transport (no gateway). */
final class RetryTest extends TestCase
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

    public function testTheRequestShape(): void
    {
        $t = new FakeTransport([self::published('news', 1, false, 'my-id')]);
        $this->client($t, timeout: 1.5, connectTimeout: 0.5)->publish('news', 'headline', ['title' => 'Grüße 😀 </script>'], id: 'my-id');

        $r = $t->requests[0];
        self::assertSame('POST', $r->method);
        self::assertSame('http://gateway.test:8080/api/publish', $r->url);
        self::assertSame('Bearer key-0123456789abcdef', $r->headers['Authorization']);
        self::assertSame('application/json; charset=utf-8', $r->headers['Content-Type']);
        self::assertSame('herald-php/' . Version::VERSION . ' PHP/' . PHP_VERSION, $r->headers['User-Agent']);
        self::assertSame('{"channel":"news","type":"headline","payload":{"title":"Grüße 😀 </script>"},"id":"my-id"}', $r->body);
        self::assertSame(1.5, $r->timeout);
        self::assertSame(0.5, $r->connectTimeout);
    }

    public function testAPublishIsRetriedWithTheSameGeneratedIdAndTheRetryIsNotADuplicate(): void
    {
        $t = new FakeTransport([
            new TransportError('timed out', 'timeout'),
            FakeTransport::json(503, ['error' => ['code' => 'engine_unavailable', 'message' => 'down']]),
            self::published('news', 7, true, 'placeholder'),
        ]);
        $r = $this->client($t)->publish('news', 't', ['x' => 1]);

        self::assertCount(3, $t->requests);
        $id = $t->body(0)['id'];
        self::assertStringStartsWith('php-', $id);
        self::assertSame($id, $t->body(1)['id']);
        self::assertSame($id, $t->body(2)['id']);
        self::assertSame($t->requests[0]->headers['X-Request-Id'], $t->requests[2]->headers['X-Request-Id']);
        self::assertSame(7, $r->first()->seq);
        self::assertFalse($r->first()->duplicate, 'the duplicate is this call\'s own first attempt');
        self::assertCount(2, $this->waits);
    }

    public function testAnAnswerLostAfterThePublishWasSentStaysAPossiblePublish(): void
    {
        // The first attempt reached the gateway (it may have published) and its answer was lost; the retries
        // then find the engine down. Not "nothing was accepted": the id to publish again with.
        $sent = new TransportError('reset', 'transport_error', 0, null, null, ['sent' => true]);
        $unavailable = FakeTransport::json(503, ['error' => ['code' => 'engine_unavailable', 'message' => 'down']]);
        $t = new FakeTransport([$sent, $unavailable, $unavailable]);
        try {
            $this->client($t)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (OutcomeUnknown $e) {
            self::assertSame($t->body(0)['id'], $e->getPublishId());
            self::assertSame('transport_error', $e->getErrorCode());
            self::assertStringContainsString('last attempt failed with engine_unavailable', $e->getMessage());
        }
        // Not sent at all (refused): nothing happened, a TransportError as before.
        $refused = new TransportError('refused', 'transport_error', 0, null, null, ['sent' => false]);
        $t = new FakeTransport([$refused, $unavailable, $unavailable]);
        try {
            $this->client($t)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (ServiceUnavailable $e) {
            self::assertNotInstanceOf(OutcomeUnknown::class, $e);
        }
    }

    public function testADuplicateOfYourOwnIdIsReported(): void
    {
        $t = new FakeTransport([new TransportError('reset', 'transport_error'), self::published('news', 3, true, 'evt-9')]);
        self::assertTrue($this->client($t)->publish('news', 't', ['x' => 1], id: 'evt-9')->first()->duplicate);
    }

    public function testBackoffIsExponentialWithFullJitterAndCapped(): void
    {
        $script = array_fill(0, 6, FakeTransport::json(502, []));
        $t = new FakeTransport($script);
        try {
            $this->client($t, retries: 5, retryDelay: 100, maxRetryDelay: 300)->channel('news');
            self::fail('no exception');
        } catch (ServiceUnavailable $e) {
            self::assertSame('service_unavailable', $e->getErrorCode());
            self::assertSame(502, $e->getStatus());
        }
        self::assertCount(6, $t->requests);
        self::assertCount(5, $this->waits);
        foreach ([100, 200, 300, 300, 300] as $i => $cap) {
            self::assertGreaterThanOrEqual(0, $this->waits[$i]);
            self::assertLessThanOrEqual($cap, $this->waits[$i]);
        }
    }

    public function testClientErrorsAreNotRetried(): void
    {
        $error = ['error' => ['code' => 'invalid_field', 'message' => 'x', 'field' => 'type']];
        $t = new FakeTransport([FakeTransport::json(400, $error, ['X-Request-Id' => 'req-1'])]);
        try {
            $this->client($t)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (ValidationFailed $e) {
            self::assertSame('req-1', $e->getRequestId());
            self::assertSame('type', $e->getField());
        }
        self::assertCount(1, $t->requests);
    }

    public function testNoRetriesMeansOneAttemptAndNoGeneratedId(): void
    {
        $t = new FakeTransport([new TransportError('refused', 'transport_error', 0, null, null, ['sent' => false])]);
        try {
            $this->client($t, retries: 0)->publish('news', 't', ['x' => 1]);
            self::fail('no exception');
        } catch (TransportError $e) {
            self::assertSame('transport_error', $e->getErrorCode());
        }
        self::assertCount(1, $t->requests);
        self::assertArrayNotHasKey('id', $t->body(0));
    }

    public function testDisconnectingOneClientIsNeverRetriedButAUserIs(): void
    {
        $t = new FakeTransport([FakeTransport::json(503, []), FakeTransport::json(503, []), FakeTransport::json(200, ['disconnected' => 2])]);
        try {
            $this->client($t)->disconnectClient('abc');
            self::fail('no exception');
        } catch (ServiceUnavailable $e) {
            self::assertSame(503, $e->getStatus());
        }
        self::assertCount(1, $t->requests);
        self::assertSame(2, $this->client($t)->disconnectUser(42));
        self::assertSame(['user' => '42'], $t->body(2));
    }

    public function testAnUnexpectedResponseIsAHeraldException(): void
    {
        $cases = [
            new Response(200, [], '<html>proxy</html>'),
            FakeTransport::json(200, ['results' => ['news' => ['seq' => 'one']]]),
            new Response(500, [], 'Internal Server Error'),
        ];
        foreach ($cases as $response) {
            try {
                $this->client(new FakeTransport([$response]), retries: 0)->publish('news', 't', ['x' => 1]);
                self::fail('no exception');
            } catch (HeraldException $e) {
                self::assertContains($e->getErrorCode(), ['invalid_response', 'http_500']);
            }
        }
    }

    public function testPublishManyGeneratesAnIdPerItem(): void
    {
        $t = new FakeTransport([FakeTransport::json(200, [
            ['id' => 'a', 'results' => ['x' => ['seq' => 1, 'epoch' => 'E', 'duplicate' => false, 'subscribers' => 0]]],
            ['id' => 'b', 'results' => ['user:1' => ['seq' => 1, 'epoch' => 'E', 'duplicate' => false, 'subscribers' => 0, 'online' => false]]],
        ])]);
        $out = $this->client($t)->publishMany([
            ['channel' => 'x', 'type' => 't', 'payload' => ['a' => 1]],
            ['user' => 1, 'type' => 't', 'payload' => [], 'id' => 'mine'],
        ]);
        $sent = $t->body(0);
        self::assertStringStartsWith('php-', $sent[0]['id']);
        self::assertSame('mine', $sent[1]['id']);
        self::assertSame('user:1', $sent[1]['channel']);
        self::assertSame('{"channel":"x","type":"t","payload":{"a":1},"id":"' . $sent[0]['id'] . '"}', json_encode($sent[0]));
        self::assertStringContainsString('"payload":{}', (string) $t->requests[0]->body);
        self::assertFalse($out[1]->online);
    }

    public function testOnlineAndHistoryQueryStrings(): void
    {
        $t = new FakeTransport([
            FakeTransport::json(200, ['users' => ['42' => ['online' => true, 'connections' => 3]]]),
            FakeTransport::json(200, ['channel' => 'a:b', 'seq' => 0, 'epoch' => 'E', 'complete' => true, 'messages' => []]),
        ]);
        $online = $this->client($t)->online([42, 'bob']);
        $this->client($t)->history('a:b', 0, 'E 1', 10);

        self::assertSame('http://gateway.test:8080/api/online?users=42%2Cbob', $t->requests[0]->url);
        self::assertSame('GET', $t->requests[0]->method);
        self::assertNull($t->requests[0]->body);
        self::assertTrue($online->isOnline(42));
        self::assertSame(3, $online->connections('42'));
        self::assertSame('http://gateway.test:8080/api/history/a%3Ab?since=0&epoch=E%201&limit=10', $t->requests[1]->url);
    }
}
