<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Page;
use Herald\PageConfig;
use Herald\Token;
use Herald\TokenIssuer;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;

/** Connection tokens, checked by the real gateway over a WebSocket. */
final class TokenTest extends GatewayTestCase
{
    public function testTheGatewayAcceptsATokenAndSubscribesTheUserChannel(): void
    {
        $user = $this->name('42');
        $ws = $this->connect($user);

        self::assertSame($user, $ws->connected['user']);
        self::assertArrayHasKey("user:$user", $ws->connected['subs']);
        self::assertSame(1, $this->client()->online([$user])->connections($user));
    }

    public function testTheStaticShortcutReadsTheSecretFromTheEnvironment(): void
    {
        $user = $this->name('env');
        $previous = getenv('HERALD_JWT_SECRET');
        putenv('HERALD_JWT_SECRET=' . Env::jwtSecret() . ',another-secret-that-is-long-enough-000');
        try {
            $token = Token::forUser($user);
        } finally {
            putenv($previous === false ? 'HERALD_JWT_SECRET' : "HERALD_JWT_SECRET=$previous");
        }
        $ws = $this->open(['token' => $token]);
        self::assertSame($user, $ws->waitFrame(static fn ($f) => $f['type'] === 'connected')['user']);

        $explicit = Token::forUser($user, ttl: 60, secret: Env::jwtSecret());
        $ws2 = $this->open(['token' => $explicit]);
        self::assertSame($user, $ws2->waitFrame(static fn ($f) => $f['type'] === 'connected')['user']);
    }

    public function testChannelPatternsGrantPrivateChannels(): void
    {
        $team = $this->name('team');
        $token = $this->tokens()->forUser($this->name('u'), ["private:$team:*", 'private:doc-??']);
        $subs = ["private:$team:chat" => new \stdClass(), 'private:doc-12' => new \stdClass(), 'private:doc-123' => new \stdClass()];
        $ws = $this->open(['token' => $token, 'subs' => $subs]);

        $connected = $ws->waitFrame(static fn ($f) => $f['type'] === 'connected');
        self::assertArrayHasKey("private:$team:chat", $connected['subs']);
        self::assertArrayHasKey('private:doc-12', $connected['subs']);
        $refused = $ws->waitFrame(static fn ($f) => $f['type'] === 'error');
        self::assertSame(['forbidden', 'private:doc-123'], [$refused['code'], $refused['channel']]);

        $this->client()->publish("private:$team:chat", 'msg', ['text' => 'team only']);
        self::assertSame(['text' => 'team only'], $ws->waitMessage("private:$team:chat")['payload']);
    }

    public function testPublishPatternsLetTheBrowserPublish(): void
    {
        $room = $this->name('room');
        $token = $this->tokens()->forUser($this->name('u'), publish: ["chat:$room"], claims: ['info' => ['name' => 'Ann']]);
        $ws = $this->open(['token' => $token, 'subs' => ["chat:$room" => new \stdClass()]]);
        $ws->waitFrame(static fn ($f) => $f['type'] === 'connected');

        $ws->send(['type' => 'publish', 'channel' => "chat:$room", 'event' => 'said', 'payload' => ['text' => 'hi'], 'id' => 1]);
        // The echo and the answer may come in either order (the message can reach this connection first).
        $answer = $ws->waitFrame(static fn ($f) => $f['type'] === 'published' || ($f['type'] === 'said' && $f['seq'] === 1));
        $other = $ws->waitFrame(static fn ($f) => $f['type'] === ($answer['type'] === 'said' ? 'published' : 'said'));
        self::assertSame(['text' => 'hi'], ($answer['type'] === 'said' ? $answer : $other)['payload']);
        self::assertSame(1, ($answer['type'] === 'published' ? $answer : $other)['seq']);
        $ws->send(['type' => 'publish', 'channel' => 'news', 'event' => 'said', 'payload' => [], 'id' => 2]);
        self::assertSame('forbidden', $ws->waitFrame(static fn ($f) => $f['type'] === 'error')['code']);

        $this->expectException(\InvalidArgumentException::class);
        $this->tokens()->forUser('u', publish: ['']);
    }

    public function testATamperedTokenIsRefusedWith4501(): void
    {
        $token = $this->tokens()->forUser($this->name('u'));
        [$head, $body, $sig] = explode('.', $token);
        $claims = json_decode(base64_decode(strtr($body, '-_', '+/')), true);
        $claims['sub'] = 'admin';
        $forged = $head . '.' . TokenIssuer::base64url(json_encode($claims)) . '.' . $sig;
        $flipped = $head . '.' . $body . '.' . strrev($sig);

        foreach ([$forged, $flipped, 'not.a.jwt'] as $bad) {
            self::assertSame(4501, $this->open(['token' => $bad])->waitClose()['code']);
        }
    }

    public function testATokenSignedWithAnotherSecretIsRefusedWith4501(): void
    {
        $other = new TokenIssuer(str_repeat('x', 40));
        self::assertSame(4501, $this->open(['token' => $other->forUser('1')])->waitClose()['code']);
    }

    public function testAnExpiredTokenIsRefusedWith4401(): void
    {
        $past = $this->tokens(static fn (): int => time() - 7200);
        $close = $this->open(['token' => $past->forUser($this->name('u'), [], 60)])->waitClose();
        self::assertSame(4401, $close['code']);
    }

    public function testATokenNotYetValidIsRefused(): void
    {
        $token = $this->tokens()->forUser($this->name('u'), [], 3600, ['nbf' => time() + 3600]);
        self::assertSame(4501, $this->open(['token' => $token])->waitClose()['code']);
    }

    public function testATokenWithoutExpiryIsAccepted(): void
    {
        $token = $this->tokens()->forUser($this->name('forever'), [], null);
        $claims = json_decode(base64_decode(strtr(explode('.', $token)[1], '-_', '+/')), true);
        self::assertArrayNotHasKey('exp', $claims);
        self::assertSame($this->name('forever'), $this->open(['token' => $token])->waitFrame(static fn ($f) => $f['type'] === 'connected')['user']);
    }

    public function testTheTokenFormat(): void
    {
        $issuer = new TokenIssuer(str_repeat('s', 32), static fn (): int => 1_700_000_000);
        $token = $issuer->forUser(42, ['private:a:*'], 600);
        [$head, $body, $sig] = explode('.', $token);

        self::assertSame(['alg' => 'HS256', 'typ' => 'JWT'], json_decode(base64_decode($head), true));
        self::assertSame(
            ['sub' => '42', 'iat' => 1_700_000_000, 'exp' => 1_700_000_600, 'channels' => ['private:a:*']],
            json_decode(base64_decode(strtr($body, '-_', '+/')), true),
        );
        self::assertSame(TokenIssuer::base64url(hash_hmac('sha256', "$head.$body", str_repeat('s', 32), true)), $sig);
        self::assertDoesNotMatchRegularExpression('/[+\/=]/', $token);
        self::assertStringNotContainsString(str_repeat('s', 32), print_r($issuer, true));
    }

    public function testInvalidInputsAreRefusedBeforeSigning(): void
    {
        $issuer = new TokenIssuer(str_repeat('s', 32));
        $cases = [
            static fn () => new TokenIssuer('too short'),
            static fn () => $issuer->forUser(''),
            static fn () => $issuer->forUser('has space'),
            static fn () => $issuer->forUser(str_repeat('a', 196)),
            static fn () => $issuer->forUser('1', ['']),
            static fn () => $issuer->forUser('1', array_fill(0, 101, 'private:x')),
            static fn () => $issuer->forUser('1', [], 0),
            static fn () => $issuer->forUser('1', [], 60, ['sub' => 'other']),
            static fn () => Token::forUser('1', [], 60, 'short'),
            // What the gateway would refuse after signing: info over 1024 bytes (4501), a token over 8192 characters.
            static fn () => $issuer->forUser('1', claims: ['info' => ['bio' => str_repeat('x', 1100)]]),
            static fn () => $issuer->forUser('1', array_fill(0, 40, 'private:' . str_repeat('p', 192))),
        ];
        foreach ($cases as $i => $call) {
            try {
                $call();
                self::fail("case $i accepted");
            } catch (\InvalidArgumentException) {
                self::assertTrue(true);
            }
        }
    }

    public function testPageScriptIsSafeInsideHtml(): void
    {
        $config = new PageConfig(url: 'ws://h/ws', token: 'a.b.c', extra: ['name' => "</script><script>alert('x')</script> & \u{2028} 😀"]);
        $html = Page::script($config, 'HERALD', 'n"once');

        self::assertStringStartsWith('<script nonce="n&quot;once">window.HERALD = {', $html);
        self::assertStringEndsWith('};</script>', $html);
        self::assertSame(1, substr_count($html, '</script>'));
        self::assertStringNotContainsString("'", substr($html, 30));
        self::assertStringContainsString('"url":"ws://h/ws"', $html);
        $json = substr($html, \strlen('<script nonce="n&quot;once">window.HERALD = '), -\strlen(';</script>'));
        self::assertSame("</script><script>alert('x')</script> & \u{2028} 😀", json_decode($json, true)['name']);
        self::assertSame('{}', Page::json([]));
        try {
            Page::json(['x' => NAN]);
            self::fail('NAN encoded');
        } catch (\InvalidArgumentException $e) {
            self::assertInstanceOf(\JsonException::class, $e->getPrevious());
        }

        $this->expectException(\InvalidArgumentException::class);
        Page::script(new PageConfig('ws://h/ws'), 'not-an-identifier');
    }
}
