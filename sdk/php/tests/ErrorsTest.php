<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\ClientOptions;
use Herald\Exception\HeraldException;
use Herald\Exception\NotFound;
use Herald\Exception\OutcomeUnknown;
use Herald\Exception\PayloadTooLarge;
use Herald\Exception\TransportError;
use Herald\Exception\Unauthorized;
use Herald\Exception\ValidationFailed;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;

/** Every failure is a typed exception: from the real gateway, and when there is no gateway to answer. */
final class ErrorsTest extends GatewayTestCase
{
    public function testAWrongApiKeyIsUnauthorized(): void
    {
        $client = new Client(Env::url(), 'not-the-key-0123456789');
        $cases = [
            fn () => $client->publish($this->name('x'), 't', ['x' => 1]),
            fn () => $client->online(['1']),
            fn () => $client->channel('x'),
            fn () => $client->history('x'),
            fn () => $client->disconnectUser('1'),
        ];
        foreach ($cases as $call) {
            try {
                $call();
                self::fail('no exception');
            } catch (Unauthorized $e) {
                self::assertSame('unauthorized', $e->getErrorCode());
                self::assertSame(401, $e->getStatus());
                self::assertNotNull($e->getRequestId());
            }
        }
    }

    public function testValidationErrorsNameTheField(): void
    {
        $cases = [
            ['invalid_channel', 'channel', fn () => $this->client()->publish('no spaces', 't', ['x' => 1])],
            ['invalid_channel', 'channels[1]', fn () => $this->client()->publish(['ok', 'no/slash'], 't', ['x' => 1])],
            ['reserved_type', 'type', fn () => $this->client()->publish('ok', 'connect', ['x' => 1])],
            ['invalid_field', 'type', fn () => $this->client()->publish('ok', 'bad type!', ['x' => 1])],
            ['invalid_field', 'id', fn () => $this->client()->publish('ok', 't', ['x' => 1], str_repeat('i', 201))],
            ['invalid_channel', 'channel', fn () => $this->client()->publishToUser('has space', 't', ['x' => 1])],
        ];
        foreach ($cases as [$code, $field, $call]) {
            try {
                $call();
                self::fail("no exception for $code $field");
            } catch (ValidationFailed $e) {
                self::assertSame([$code, $field, 400], [$e->getErrorCode(), $e->getField(), $e->getStatus()]);
            }
        }
    }

    public function testABodyOverTheLimitIsPayloadTooLarge(): void
    {
        try {
            $this->client()->publish($this->name('big'), 't', ['blob' => str_repeat('x', 1_100_000)]);
            self::fail('no exception');
        } catch (PayloadTooLarge $e) {
            self::assertSame('body_too_large', $e->getErrorCode());
            self::assertSame(413, $e->getStatus());
            self::assertSame(1048576, $e->getDetails()['limit']);
        }
        // The client and its kept-alive connection still work afterwards.
        self::assertSame(1, $this->client()->publish($this->name('after'), 't', ['x' => 1])->first()->seq);
    }

    public function testAWrongBaseUrlPathIsNotFound(): void
    {
        $client = new Client(Env::url() . '/prefix', Env::apiKey());
        try {
            $client->channel('x');
            self::fail('no exception');
        } catch (NotFound $e) {
            self::assertSame('not_found', $e->getErrorCode());
            self::assertSame(404, $e->getStatus());
        }
    }

    public function testAGatewayThatIsDownIsATransportErrorAfterTheRetries(): void
    {
        $waits = [];
        $client = new Client('http://127.0.0.1:' . self::closedPort(), 'any-key-0123456789', new ClientOptions(
            retries: 2,
            sleep: static function (int $ms) use (&$waits): void {
                $waits[] = $ms;
            },
        ));
        foreach ([fn () => $client->publish('news', 't', ['x' => 1]), fn () => $client->online(['1'])] as $call) {
            $waits = [];
            try {
                $call();
                self::fail('no exception');
            } catch (TransportError $e) {
                self::assertSame('transport_error', $e->getErrorCode());
                self::assertFalse($e->isTimeout());
                self::assertSame(0, $e->getStatus());
                self::assertStringContainsString('127.0.0.1', $e->getMessage());
            }
            self::assertCount(2, $waits, 'two retries, each after a backoff');
            self::assertLessThanOrEqual(100, $waits[0]);
            self::assertLessThanOrEqual(200, $waits[1]);
        }
    }

    public function testAPasswordInTheBaseUrlNeverShowsInAnError(): void
    {
        $client = new Client('http://proxyuser:S3cr3tProxyPass@127.0.0.1:' . self::closedPort(), 'any-key-0123456789', new ClientOptions(retries: 0));
        try {
            $client->online(['1']);
            self::fail('no exception');
        } catch (TransportError $e) {
            self::assertStringNotContainsString('S3cr3t', $e->getMessage());
            self::assertStringContainsString('http://***@127.0.0.1:', $e->getMessage());
        }
    }

    public function testAGatewayThatNeverAnswersIsATimeout(): void
    {
        // A listening socket that is never accepted from: the kernel completes the TCP handshake, the
        // request is sent, and no answer ever comes.
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        self::assertNotFalse($server, "cannot listen: $errstr ($errno)");
        $address = stream_socket_get_name($server, false);
        $client = new Client("http://$address", 'any-key-0123456789', new ClientOptions(timeout: 0.3, retries: 0));

        $started = microtime(true);
        try {
            // Not a publish: a plain timeout.
            try {
                $client->online(['1']);
                self::fail('no exception');
            } catch (TransportError $e) {
                self::assertTrue($e->isTimeout());
                self::assertSame('timeout', $e->getErrorCode());
            }
            // A publish that was sent and never answered may have been published: its outcome is unknown.
            try {
                $client->publish('news', 't', ['x' => 1]);
                self::fail('no exception');
            } catch (OutcomeUnknown $e) {
                self::assertSame('timeout', $e->getErrorCode());
                self::assertInstanceOf(TransportError::class, $e->getPrevious());
                self::assertTrue($e->getPrevious()->isTimeout());
            }
        } finally {
            fclose($server);
        }
        self::assertLessThan(5.0, microtime(true) - $started);
    }

    public function testAScalarPayloadIsRefusedBeforeAnyNetworkCall(): void
    {
        // A closed port: had a request been sent, this would be a TransportError.
        $client = new Client('http://127.0.0.1:' . self::closedPort(), 'any-key-0123456789', new ClientOptions(retries: 0));
        $jsonScalar = new class () implements \JsonSerializable {
            public function jsonSerialize(): mixed
            {
                return 'just a string';
            }
        };
        $cases = [
            fn () => $client->publish('news', 't', $jsonScalar),
            fn () => $client->publishMany([['channel' => 'news', 'type' => 't', 'payload' => 'hello']]),
            fn () => $client->publish([], 't', ['x' => 1]),
            fn () => $client->publish('news', 't', ['x' => 1], ['idd' => 'typo']),
            fn () => $client->publish('news', 't', ['x' => NAN]),
            fn () => $client->publishMany([['channel' => 'news', 'user' => '1', 'type' => 't', 'payload' => []]]),
        ];
        foreach ($cases as $i => $call) {
            try {
                $call();
                self::fail("no exception for case $i");
            } catch (\InvalidArgumentException $e) {
                self::assertNotInstanceOf(HeraldException::class, $e);
            }
        }
    }

    public function testAScalarPayloadIsATypeErrorForTheTypedMethods(): void
    {
        $this->expectException(\TypeError::class);
        // @phpstan-ignore-next-line
        $this->client()->publish('news', 't', 'hello');
    }

    public function testInvalidOptionsAreRefusedAtConstruction(): void
    {
        $cases = [
            'ftp URL' => static fn () => new Client('ftp://127.0.0.1', 'key'),
            'no scheme' => static fn () => new Client('127.0.0.1:8080', 'key'),
            'blank key' => static fn () => new Client('http://127.0.0.1:8080', ' '),
            'timeout 0' => static fn () => new ClientOptions(timeout: 0),
            'infinite timeout' => static fn () => new ClientOptions(connectTimeout: INF),
            'negative retries' => static fn () => new ClientOptions(retries: -1),
            'negative delay' => static fn () => new ClientOptions(maxRetryDelay: -1),
            'unknown array key' => static fn () => new Client('http://127.0.0.1:8080', 'key', ['retrys' => 1]),
            'array value of the wrong type' => static fn () => new Client('http://127.0.0.1:8080', 'key', ['transport' => new \stdClass()]),
            'array value out of range' => static fn () => new Client('http://127.0.0.1:8080', 'key', ['timeout' => 0]),
        ];
        foreach ($cases as $case => $make) {
            try {
                $make();
                self::fail("accepted: $case");
            } catch (\InvalidArgumentException $e) {
                self::assertNotInstanceOf(HeraldException::class, $e, $case);
            }
        }
    }

    /** A port nothing listens on: bound to find a free one, then closed. */
    private static function closedPort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($s);
        $port = (int) substr((string) strrchr((string) stream_socket_get_name($s, false), ':'), 1);
        fclose($s);
        return $port;
    }
}
