<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\WebhookVerificationFailed;
use Herald\Internal\Json;

/**
 * Verifies the webhooks Herald sends, signed the Standard Webhooks way (https://www.standardwebhooks.com,
 * spec 1.0): headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` (space-separated
 * `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` entries, several during a secret rotation), with the
 * endpoint's secret `whsec_<base64 key>`.
 *
 *     $event = Herald\Webhook::verify(file_get_contents('php://input'), $_SERVER, getenv('HERALD_WEBHOOK_SECRET'));
 *
 * Verify the raw body exactly as received, before any JSON decoding: re-encoded JSON would not match the
 * signature. Use `webhook-id` to process each event once (Herald retries a delivery with the same id).
 */
final class Webhook
{
    /** Seconds the timestamp may be away from now, either way: the spec's (and its libraries') 5 minutes. */
    public const TOLERANCE = 300;

    /** The prefix of a Standard Webhooks symmetric secret. */
    public const SECRET_PREFIX = 'whsec_';

    private const HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'];

    private function __construct()
    {
    }

    /**
     * Checks that Herald sent this request, and returns its event.
     *
     * @param string $payload The raw request body, byte for byte.
     * @param array<array-key, mixed> $headers The request headers, names in any case: `['webhook-id' => ...]`,
     *        getallheaders(), a PSR-7 getHeaders() (lists of values), or $_SERVER (`HTTP_WEBHOOK_ID`).
     * @param string $secret The endpoint's signing secret, `whsec_<base64>` (the prefix is optional).
     * @param int|null $now The current Unix time in seconds; null means time().
     * @return array<mixed> The event: the body's JSON, decoded into arrays.
     * @throws WebhookVerificationFailed when the request is not a valid, fresh Herald webhook.
     * @throws \InvalidArgumentException for a secret that is not base64 (a configuration error).
     */
    public static function verify(string $payload, array $headers, #[\SensitiveParameter] string $secret, ?int $now = null): array
    {
        $key = self::key($secret);
        $found = self::headers($headers);
        $id = self::single($found, 'webhook-id');
        $timestamp = self::timestamp(self::single($found, 'webhook-timestamp'), $now ?? time());
        $signatures = implode(' ', $found['webhook-signature'] ?? []);
        if (trim($signatures) === '') {
            throw new WebhookVerificationFailed('the webhook-signature header is missing', 'webhook_missing_header', 0, 'webhook-signature');
        }

        $expected = 'v1,' . base64_encode(hash_hmac('sha256', "$id.$timestamp.$payload", $key, true));
        $valid = false;
        foreach (explode(' ', $signatures) as $signature) {
            // Constant time, and every entry compared: a match does not end the loop early.
            $valid = hash_equals($expected, $signature) || $valid;
        }
        if (!$valid) {
            throw new WebhookVerificationFailed(
                'no webhook signature matches the secret: the body, id or timestamp was changed, or it was signed with another secret',
                'webhook_invalid_signature',
                0,
                'webhook-signature',
                null,
                ['webhook-id' => $id],
            );
        }

        try {
            return Json::decode($payload);
        } catch (\JsonException $e) {
            throw new WebhookVerificationFailed(
                'the webhook is signed but its body is not a JSON object or array: ' . $e->getMessage(),
                'webhook_invalid_payload',
                0,
                null,
                null,
                ['webhook-id' => $id],
                $e,
            );
        }
    }

    /** The HMAC key: the secret without its `whsec_` prefix, base64-decoded. */
    private static function key(#[\SensitiveParameter] string $secret): string
    {
        $encoded = str_starts_with($secret, self::SECRET_PREFIX) ? substr($secret, \strlen(self::SECRET_PREFIX)) : $secret;
        $key = base64_decode($encoded, true);
        if ($key === false || $key === '') {
            throw new \InvalidArgumentException('the webhook secret must be whsec_ followed by the base64 of the key, as Herald shows it');
        }
        return $key;
    }

    /**
     * The three Standard Webhooks headers, by lower-case name, each with its values.
     *
     * @param array<array-key, mixed> $headers
     * @return array<string, list<string>>
     */
    private static function headers(array $headers): array
    {
        $found = [];
        foreach ($headers as $name => $value) {
            $name = str_replace('_', '-', strtolower((string) $name));
            // $_SERVER names a request header HTTP_<NAME>, with dashes as underscores.
            $name = str_starts_with($name, 'http-') ? substr($name, 5) : $name;
            if (!\in_array($name, self::HEADERS, true)) {
                continue;
            }
            foreach (\is_array($value) ? $value : [$value] as $v) {
                if (\is_string($v) && trim($v) !== '') {
                    $found[$name][] = trim($v);
                }
            }
        }
        return $found;
    }

    /** @param array<string, list<string>> $found */
    private static function single(array $found, string $name): string
    {
        $values = array_values(array_unique($found[$name] ?? []));
        if ($values === []) {
            throw new WebhookVerificationFailed("the $name header is missing", 'webhook_missing_header', 0, $name);
        }
        if (\count($values) > 1) {
            throw new WebhookVerificationFailed("the $name header is repeated with different values", 'webhook_invalid_header', 0, $name);
        }
        return $values[0];
    }

    /** The timestamp as signed, once it is an integer within TOLERANCE seconds of $now. */
    private static function timestamp(string $header, int $now): int
    {
        if (preg_match('/^[0-9]{1,18}$/D', $header) !== 1) {
            throw new WebhookVerificationFailed(
                'the webhook-timestamp header is not a number of seconds',
                'webhook_invalid_header',
                0,
                'webhook-timestamp',
            );
        }
        $timestamp = (int) $header;
        if ($now - $timestamp > self::TOLERANCE || $timestamp - $now > self::TOLERANCE) {
            throw new WebhookVerificationFailed(
                sprintf('the webhook timestamp is %d s from now, more than the %d s allowed: a replay, or a clock off', $timestamp - $now, self::TOLERANCE),
                'webhook_timestamp_out_of_tolerance',
                0,
                'webhook-timestamp',
                null,
                ['timestamp' => $timestamp, 'now' => $now, 'tolerance' => self::TOLERANCE],
            );
        }
        return $timestamp;
    }
}
