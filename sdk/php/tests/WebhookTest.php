<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\HeraldException;
use Herald\Exception\WebhookVerificationFailed;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\Process;
use Herald\Webhook;
use PHPUnit\Framework\TestCase;

/**
 * Herald\Webhook::verify() against the reference implementation of Standard Webhooks, the npm package
 * `standardwebhooks`: messages it signs verify in PHP; tampered ones fail in both.
 */
final class WebhookTest extends TestCase
{
    private const T = 1_767_225_600;

    private string $secret = '';

    protected function setUp(): void
    {
        $this->secret = Webhook::SECRET_PREFIX . base64_encode(random_bytes(32));
    }

    /**
     * Runs jobs through tests/Support/standard-webhooks.mjs (the npm package) in one node process.
     *
     * @param list<array<string, mixed>> $jobs
     * @return list<mixed>
     */
    private static function node(array $jobs): array
    {
        [$code, $out, $err] = Process::run(
            [Env::node(), __DIR__ . '/Support/standard-webhooks.mjs'],
            null,
            [],
            json_encode($jobs, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE),
        );
        self::assertSame(0, $code, "standard-webhooks.mjs failed (is the standardwebhooks npm package installed? npm ci): $err");
        return json_decode($out, true, 512, JSON_THROW_ON_ERROR);
    }

    /** The webhook-signature the npm package computes. */
    private function sign(string $id, int $timestamp, string $payload, ?string $secret = null): string
    {
        return self::node([['op' => 'sign', 'secret' => $secret ?? $this->secret, 'id' => $id, 'timestamp' => $timestamp, 'payload' => $payload]])[0];
    }

    /** @param array<string, mixed> $headers */
    private function failure(string $payload, array $headers, ?int $now = self::T, ?string $secret = null): WebhookVerificationFailed
    {
        try {
            Webhook::verify($payload, $headers, $secret ?? $this->secret, $now);
        } catch (WebhookVerificationFailed $e) {
            return $e;
        }
        self::fail('verified: ' . json_encode($headers));
    }

    public function testTheReferenceTestVectorVerifies(): void
    {
        // The example of the Standard Webhooks libraries' own tests; the npm package must agree with it too.
        $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
        $headers = ['webhook-id' => 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp' => '1614265330'];
        $signature = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
        self::assertSame($signature, $this->sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}', $secret));

        $event = Webhook::verify('{"test": 2432232314}', $headers + ['webhook-signature' => $signature], $secret, 1614265330);
        self::assertSame(['test' => 2432232314], $event);
    }

    public function testWhatTheNpmPackageSignsVerifiesWithEveryHeaderStyle(): void
    {
        $payload = json_encode(
            ['type' => 'message.undelivered', 'timestamp' => '2026-01-01T00:00:00Z', 'data' => ['channel' => 'user:42', 'text' => 'Grüße 😀 中文']],
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR,
        );
        $signature = $this->sign('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', self::T, $payload);
        self::assertStringStartsWith('v1,', $signature);

        $id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
        $styles = [
            'lower case' => ['webhook-id' => $id, 'webhook-timestamp' => (string) self::T, 'webhook-signature' => $signature],
            'getallheaders()' => ['Webhook-Id' => $id, 'Webhook-Timestamp' => (string) self::T, 'Webhook-Signature' => $signature],
            'PSR-7' => ['webhook-id' => [$id], 'Webhook-Timestamp' => [(string) self::T], 'WEBHOOK-SIGNATURE' => [$signature]],
            '$_SERVER' => [
                'REQUEST_METHOD' => 'POST',
                'HTTP_WEBHOOK_ID' => $id,
                'HTTP_WEBHOOK_TIMESTAMP' => (string) self::T,
                'HTTP_WEBHOOK_SIGNATURE' => $signature,
                'CONTENT_TYPE' => 'application/json',
            ],
        ];
        foreach ($styles as $style => $headers) {
            $event = Webhook::verify($payload, $headers, $this->secret, self::T);
            self::assertSame('Grüße 😀 中文', $event['data']['text'], $style);
        }

        // The secret's whsec_ prefix is optional, as in the npm package.
        self::assertSame('user:42', Webhook::verify($payload, $styles['lower case'], substr($this->secret, 6), self::T)['data']['channel']);
    }

    public function testTamperedMessagesFailHereAndInTheNpmPackage(): void
    {
        // Signed now, so that the npm package (which always checks against its clock) judges the same messages.
        $now = time();
        $payload = '{"type":"presence.changed","data":{"user":"42","online":true}}';
        $signature = $this->sign('msg_1', $now, $payload);
        $headers = ['webhook-id' => 'msg_1', 'webhook-timestamp' => (string) $now, 'webhook-signature' => $signature];
        $otherSecret = $this->sign('msg_1', $now, $payload, 'whsec_' . base64_encode(random_bytes(32)));
        $cases = [
            'the original' => [$payload, $headers, null],
            'a body changed by one byte' => [str_replace('true', 'fals', $payload), $headers, 'webhook_invalid_signature'],
            'a body re-encoded with spaces' => [json_encode(json_decode($payload), JSON_PRETTY_PRINT), $headers, 'webhook_invalid_signature'],
            'another timestamp' => [$payload, ['webhook-timestamp' => (string) ($now - 1)] + $headers, 'webhook_invalid_signature'],
            'another id' => [$payload, ['webhook-id' => 'msg_2'] + $headers, 'webhook_invalid_signature'],
            'another secret' => [$payload, ['webhook-signature' => $otherSecret] + $headers, 'webhook_invalid_signature'],
            'a signature without its version' => [$payload, ['webhook-signature' => substr($signature, 3)] + $headers, 'webhook_invalid_signature'],
        ];
        $jobs = [];
        foreach ($cases as [$body, $h]) {
            $jobs[] = ['op' => 'verify', 'secret' => $this->secret, 'payload' => $body, 'headers' => $h];
        }
        $npm = self::node($jobs);

        foreach (array_keys($cases) as $i => $case) {
            [$body, $h, $code] = $cases[$case];
            self::assertSame($code === null, $npm[$i]['ok'], "npm standardwebhooks on $case: " . json_encode($npm[$i]));
            if ($code === null) {
                self::assertSame($npm[$i]['event'], Webhook::verify($body, $h, $this->secret, $now), $case);
            } else {
                $e = $this->failure($body, $h, $now);
                self::assertSame([$code, 'webhook-signature'], [$e->getErrorCode(), $e->getField()], $case);
            }
        }
    }

    public function testTheTimestampMustBeWithinFiveMinutes(): void
    {
        $payload = '{"type":"x"}';
        $headers = ['webhook-id' => 'msg_t', 'webhook-timestamp' => (string) self::T, 'webhook-signature' => $this->sign('msg_t', self::T, $payload)];

        // The npm package's bounds: now - t > 300 is too old, t - now > 300 is too new.
        foreach ([self::T + 300, self::T - 300, self::T] as $now) {
            self::assertSame(['type' => 'x'], Webhook::verify($payload, $headers, $this->secret, $now));
        }
        foreach ([self::T + 301, self::T - 301, self::T + 86400] as $now) {
            $e = $this->failure($payload, $headers, $now);
            self::assertSame(['webhook_timestamp_out_of_tolerance', 'webhook-timestamp'], [$e->getErrorCode(), $e->getField()]);
            self::assertSame(['timestamp' => self::T, 'now' => $now, 'tolerance' => 300], $e->getDetails());
        }

        // And the npm package agrees, on this machine's clock.
        $old = time() - 301;
        $oldHeaders = ['webhook-id' => 'msg_o', 'webhook-timestamp' => (string) $old, 'webhook-signature' => $this->sign('msg_o', $old, $payload)];
        $npm = self::node([['op' => 'verify', 'secret' => $this->secret, 'payload' => $payload, 'headers' => $oldHeaders]]);
        self::assertFalse($npm[0]['ok']);
        self::assertSame('webhook_timestamp_out_of_tolerance', $this->failure($payload, $oldHeaders, null)->getErrorCode());
    }

    public function testOneValidSignatureAmongSeveralIsEnough(): void
    {
        // A secret rotation: Herald signs with the old and the new secret; the endpoint knows either.
        $payload = '{"type":"rotated"}';
        $old = 'whsec_' . base64_encode(random_bytes(24));
        $signatures = implode(' ', [
            'v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==',
            $this->sign('msg_r', self::T, $payload, $old),
            $this->sign('msg_r', self::T, $payload),
        ]);
        $headers = ['webhook-id' => 'msg_r', 'webhook-timestamp' => (string) self::T, 'webhook-signature' => $signatures];
        self::assertSame(['type' => 'rotated'], Webhook::verify($payload, $headers, $this->secret, self::T));
        self::assertSame(['type' => 'rotated'], Webhook::verify($payload, $headers, $old, self::T));
        // PSR-7 may hand a repeated header as several values.
        $split = ['webhook-signature' => explode(' ', $signatures)] + $headers;
        self::assertSame(['type' => 'rotated'], Webhook::verify($payload, $split, $this->secret, self::T));
    }

    public function testMissingAndMalformedHeaders(): void
    {
        $payload = '{"type":"x"}';
        $headers = ['webhook-id' => 'msg_h', 'webhook-timestamp' => (string) self::T, 'webhook-signature' => $this->sign('msg_h', self::T, $payload)];
        $cases = [
            ['webhook_missing_header', 'webhook-id', array_diff_key($headers, ['webhook-id' => 1])],
            ['webhook_missing_header', 'webhook-timestamp', array_diff_key($headers, ['webhook-timestamp' => 1])],
            ['webhook_missing_header', 'webhook-signature', array_diff_key($headers, ['webhook-signature' => 1])],
            ['webhook_missing_header', 'webhook-id', ['webhook-id' => ''] + $headers],
            ['webhook_missing_header', 'webhook-signature', ['webhook-signature' => []] + $headers],
            ['webhook_invalid_header', 'webhook-timestamp', ['webhook-timestamp' => '2026-01-01T00:00:00Z'] + $headers],
            ['webhook_invalid_header', 'webhook-timestamp', ['webhook-timestamp' => '-' . self::T] + $headers],
            ['webhook_invalid_header', 'webhook-id', $headers + ['HTTP_WEBHOOK_ID' => 'msg_other']],
        ];
        foreach ($cases as $i => [$code, $field, $h]) {
            $e = $this->failure($payload, $h);
            self::assertSame([$code, $field, 0], [$e->getErrorCode(), $e->getField(), $e->getStatus()], "case $i");
            self::assertInstanceOf(HeraldException::class, $e);
        }
        // The same value under two spellings is one header.
        self::assertSame(['type' => 'x'], Webhook::verify($payload, $headers + ['HTTP_WEBHOOK_ID' => 'msg_h'], $this->secret, self::T));
    }

    public function testASignedBodyThatIsNotJsonIsRefused(): void
    {
        foreach (['', 'hello', '42'] as $payload) {
            $headers = ['webhook-id' => 'msg_j', 'webhook-timestamp' => (string) self::T, 'webhook-signature' => $this->sign('msg_j', self::T, $payload)];
            $e = $this->failure($payload, $headers);
            self::assertSame('webhook_invalid_payload', $e->getErrorCode(), var_export($payload, true));
        }
    }

    public function testAnInvalidSecretIsAConfigurationError(): void
    {
        $headers = ['webhook-id' => 'm', 'webhook-timestamp' => (string) self::T, 'webhook-signature' => 'v1,x'];
        foreach (['', 'whsec_', 'whsec_not base64!', 'whsec_%%%'] as $secret) {
            try {
                Webhook::verify('{}', $headers, $secret, self::T);
                self::fail("accepted the secret '$secret'");
            } catch (\InvalidArgumentException $e) {
                self::assertNotInstanceOf(HeraldException::class, $e);
            }
        }
    }
}
