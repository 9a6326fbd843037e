<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\ClientOptions;
use Herald\Page;
use Herald\PageConfig;
use Herald\RedisPublisher;
use Herald\RedisPublisherOptions;
use Herald\Tests\Support\FakeTransport;
use Herald\Token;
use PHPUnit\Framework\TestCase;

/**
 * The typed options (ClientOptions, RedisPublisherOptions, PageConfig, named ids) and the untyped arrays of
 * earlier versions, which still work and report a (silenced) E_USER_DEPRECATED.
 */
final class OptionsTest extends TestCase
{
    /**
     * Runs $fn and returns what it returned and the deprecation messages it triggered, silenced or not.
     *
     * @template T
     * @param callable(): T $fn
     * @return array{0: T, 1: list<string>}
     */
    private static function deprecations(callable $fn): array
    {
        $messages = [];
        set_error_handler(static function (int $level, string $message) use (&$messages): bool {
            $messages[] = $level === E_USER_DEPRECATED ? $message : "unexpected error level $level: $message";
            return true;
        }, E_USER_DEPRECATED);
        try {
            return [$fn(), $messages];
        } finally {
            restore_error_handler();
        }
    }

    private static function published(?string $id): \Herald\Http\Response
    {
        $body = ['results' => ['news' => ['seq' => 1, 'epoch' => 'E', 'duplicate' => false, 'subscribers' => 0]]];
        return FakeTransport::json(200, $id === null ? $body : ['id' => $id] + $body);
    }

    public function testClientOptionsHoldTheDefaults(): void
    {
        $o = new ClientOptions();
        self::assertSame(
            [5.0, 2.0, 2, 100, 2000, null, null],
            [$o->timeout, $o->connectTimeout, $o->retries, $o->retryDelay, $o->maxRetryDelay, $o->transport, $o->sleep],
        );
        $defaults = Client::DEFAULTS;
        self::assertSame([$defaults['timeout'], $defaults['retries'], $defaults['maxRetryDelay']], [$o->timeout, $o->retries, $o->maxRetryDelay]);
        self::assertSame(3.0, (new ClientOptions(timeout: 3))->timeout, 'an int is a number of seconds too');
    }

    public function testTheOptionsArrayStillWorksAndIsDeprecated(): void
    {
        $t = new FakeTransport([self::published('x')]);
        [$client, $messages] = self::deprecations(static fn () => new Client('http://gateway.test', 'key-0123456789', ['transport' => $t, 'retries' => 0]));
        self::assertCount(1, $messages);
        self::assertStringContainsString('Herald\ClientOptions', $messages[0]);
        // retries => 0 took effect: no id is generated.
        $client->publish('news', 't', ['a' => 1]);
        self::assertArrayNotHasKey('id', $t->body(0));

        [, $messages] = self::deprecations(static fn () => new Client('http://gateway.test', 'key-0123456789', []));
        self::assertSame([], $messages, 'an empty array is the old default: nothing to convert');
    }

    public function testThePublishIdIsANamedArgumentAndTheOldArrayIsDeprecated(): void
    {
        $t = new FakeTransport([self::published('evt-1'), self::published('evt-2'), self::published(null)]);
        $client = new Client('http://gateway.test', 'key-0123456789', new ClientOptions(transport: $t));

        [$r, $messages] = self::deprecations(static fn () => $client->publish('news', 't', ['a' => 1], id: 'evt-1'));
        self::assertSame([], $messages);
        self::assertSame('evt-1', $t->body(0)['id']);
        self::assertSame('evt-1', $r->id);

        [, $messages] = self::deprecations(static fn () => $client->publish('news', 't', ['a' => 1], ['id' => 'evt-2']));
        self::assertSame('evt-2', $t->body(1)['id']);
        self::assertCount(1, $messages);

        foreach ([['idd' => 'typo'], ['id' => 42]] as $bad) {
            try {
                $client->publish('news', 't', ['a' => 1], $bad);
                self::fail('accepted ' . json_encode($bad));
            } catch (\InvalidArgumentException) {
                self::assertCount(2, $t->requests, 'nothing sent');
            }
        }
    }

    public function testRedisPublisherOptions(): void
    {
        $o = new RedisPublisherOptions();
        self::assertSame([null, 'herald', null, null, null, null, false, true], [
            $o->script, $o->prefix, $o->historySize, $o->historyTtl, $o->historyMetaTtl, $o->idempotencyTtl, $o->sharded, $o->presence,
        ]);
        $cases = [
            static fn () => new RedisPublisherOptions(prefix: ''),
            static fn () => new RedisPublisherOptions(prefix: 'has space'),
            static fn () => new RedisPublisherOptions(historySize: -1),
            static fn () => new RedisPublisherOptions(idempotencyTtl: 0),
            static fn () => RedisPublisherOptions::fromArray(['unknown' => 1]),
            static fn () => RedisPublisherOptions::fromArray(['historyTtl' => '600']),
            static fn () => RedisPublisherOptions::fromArray(['herald']),
        ];
        foreach ($cases as $i => $make) {
            try {
                $make();
                self::fail("case $i accepted");
            } catch (\InvalidArgumentException) {
                self::assertTrue(true);
            }
        }

        // The constructor talks to nobody, so an unconnected client shows which script it would run.
        $redis = new \Redis();
        [$publisher, $messages] = self::deprecations(static fn () => new RedisPublisher($redis, ['prefix' => 'myapp']));
        self::assertCount(1, $messages);
        self::assertSame(sha1_file(RedisPublisher::defaultScriptPath()), $publisher->scriptSha());
        $custom = tempnam(sys_get_temp_dir(), 'lua');
        file_put_contents($custom, 'return 1');
        try {
            self::assertSame(sha1('return 1'), (new RedisPublisher($redis, new RedisPublisherOptions(script: $custom)))->scriptSha());
        } finally {
            unlink($custom);
        }
    }

    public function testPageConfig(): void
    {
        $config = new PageConfig(url: 'wss://push.example.com/ws', token: 'a.b.c', pingInterval: 20000, extra: ['user' => 42]);
        self::assertSame(['url' => 'wss://push.example.com/ws', 'token' => 'a.b.c', 'pingInterval' => 20000, 'user' => 42], $config->jsonSerialize());
        self::assertSame(
            '<script>window.HERALD = {"url":"wss://push.example.com/ws","token":"a.b.c","pingInterval":20000,"user":42};</script>',
            Page::script($config),
        );
        self::assertSame('{"url":"ws://h/ws"}', Page::json(new PageConfig('ws://h/ws')));
        self::assertStringNotContainsString('a.b.c', print_r($config, true));

        [$html, $messages] = self::deprecations(static fn () => Page::script(['url' => 'ws://h/ws', 'token' => 't']));
        self::assertSame('<script>window.HERALD = {"url":"ws://h/ws","token":"t"};</script>', $html);
        self::assertCount(1, $messages);

        $cases = [
            static fn () => new PageConfig(''),
            static fn () => new PageConfig('ws://h/ws', token: ''),
            static fn () => new PageConfig('ws://h/ws', maxDelay: -1),
            static fn () => new PageConfig('ws://h/ws', extra: ['token' => 'sneaky']),
            static fn () => new PageConfig('ws://h/ws', extra: ['no key']),
        ];
        foreach ($cases as $i => $make) {
            try {
                $make();
                self::fail("case $i accepted");
            } catch (\InvalidArgumentException) {
                self::assertTrue(true);
            }
        }
    }

    public function testTokenForUserTakesNamedArguments(): void
    {
        $secret = str_repeat('s', 32);
        $token = Token::forUser(42, channels: ['private:a:*'], ttl: null, secret: $secret, claims: ['nbf' => 1]);
        $claims = json_decode(base64_decode(strtr(explode('.', $token)[1], '-_', '+/')), true);
        self::assertSame('42', $claims['sub']);
        self::assertSame(['private:a:*'], $claims['channels']);
        self::assertSame(1, $claims['nbf']);
        self::assertArrayNotHasKey('exp', $claims);
    }
}
