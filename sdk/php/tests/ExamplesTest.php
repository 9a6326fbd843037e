<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;

/** examples/php/notify.php, run as a user would run it. */
final class ExamplesTest extends GatewayTestCase
{
    private const NOTIFY = __DIR__ . '/../../../examples/php/notify.php';
    private const NOTIFY_OFFLINE = __DIR__ . '/../../../examples/php/notify-offline.php';

    /** @return array{0: int, 1: string, 2: string} exit code, stdout, stderr */
    private static function notify(array $args, array $env, string $script = self::NOTIFY): array
    {
        $env += ['PATH' => (string) getenv('PATH')];
        $process = proc_open([PHP_BINARY, $script, ...$args], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        self::assertIsResource($process);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        return [proc_close($process), (string) $out, (string) $err];
    }

    public function testNotifyPushesToAnOnlineUser(): void
    {
        $user = $this->name('42');
        $ws = $this->connect($user);

        [$code, $out] = self::notify([$user, 'hello 👋'], ['HERALD_URL' => Env::url(), 'HERALD_API_KEY' => Env::apiKey()]);

        self::assertSame(0, $code);
        self::assertSame("user $user is online: delivered to 1 connection(s) (seq 1)\n", $out);
        self::assertSame(['type' => 'notice', 'channel' => "user:$user", 'payload' => ['text' => 'hello 👋'], 'seq' => 1], $ws->waitMessage("user:$user"));
    }

    public function testNotifySaysWhenTheUserIsOffline(): void
    {
        $user = $this->name('away');
        [$code, $out] = self::notify([$user, 'hello'], ['HERALD_URL' => Env::url(), 'HERALD_API_KEY' => Env::apiKey()]);
        self::assertSame(0, $code);
        self::assertStringStartsWith("user $user is offline", $out);
    }

    public function testNotifyFailures(): void
    {
        [$code, , $err] = self::notify(['42', 'hello'], ['HERALD_URL' => Env::url(), 'HERALD_API_KEY' => 'wrong-key-0123456789']);
        self::assertSame(1, $code);
        self::assertStringContainsString('[unauthorized]', $err);

        [$code, , $err] = self::notify(['42', 'hello'], ['HERALD_URL' => Env::url()]);
        self::assertSame(2, $code);
        self::assertStringContainsString('HERALD_API_KEY', $err);

        [$code] = self::notify(['42'], ['HERALD_URL' => Env::url(), 'HERALD_API_KEY' => Env::apiKey()]);
        self::assertSame(2, $code);
    }

    public function testNotifyOfflineKeepsTheMessageInTheUsersInbox(): void
    {
        $user = $this->name('42');
        [$code, $out] = self::notify([$user, 'Your export is ready'], ['HERALD_URL' => Env::url(), 'HERALD_API_KEY' => Env::apiKey()], self::NOTIFY_OFFLINE);
        self::assertSame(0, $code);
        self::assertMatchesRegularExpression("/^kept for user $user until acknowledged \\(message [A-Za-z0-9_-]+\\); delivered when they connect\n$/", $out);
        $kept = $this->client()->inbox($user);
        self::assertCount(1, $kept);
        self::assertSame(['text' => 'Your export is ready'], $kept[0]->payload);
        self::assertTrue($kept[0]->receipt);
        self::assertStringContainsString($kept[0]->id, $out);
        // The user's next connection gets it first.
        $ws = $this->connect($user);
        self::assertSame($kept[0]->id, $ws->waitFrame(static fn (array $f) => isset($f['inbox']))['inbox']);
    }
}
