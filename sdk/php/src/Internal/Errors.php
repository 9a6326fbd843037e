<?php

declare(strict_types=1);

namespace Herald\Internal;

use Herald\Exception\ClientNotFound;
use Herald\Exception\HeraldException;
use Herald\Exception\NotFound;
use Herald\Exception\OutcomeUnknown;
use Herald\Exception\PayloadTooLarge;
use Herald\Exception\ServiceUnavailable;
use Herald\Exception\Unauthorized;
use Herald\Exception\ValidationFailed;
use Herald\Http\Response;

/**
 * Turns an error response into the matching typed exception.
 *
 * @internal
 */
final class Errors
{
    public static function fromResponse(Response $response, string $method, string $path, ?string $sentRequestId): HeraldException
    {
        $status = $response->status;
        $requestId = $response->header('x-request-id') ?? $sentRequestId;
        $error = null;
        try {
            $body = Json::decode($response->body);
            if (isset($body['error']) && \is_array($body['error']) && isset($body['error']['code']) && \is_string($body['error']['code'])) {
                $error = $body['error'];
            }
        } catch (\JsonException) {
            // Not the gateway's JSON (a proxy's HTML error page, for instance): reported by status below.
        }
        $code = $error !== null ? (string) $error['code'] : self::codeForStatus($status);
        $message = $error !== null && isset($error['message']) && \is_string($error['message'])
            ? $error['message']
            : sprintf('unexpected HTTP %d response without a Herald error body', $status);
        $field = $error !== null && isset($error['field']) && \is_string($error['field']) ? $error['field'] : null;
        $full = sprintf('%s %s: %s (%s, HTTP %d)', $method, $path, $message, $code, $status);
        $class = self::classFor($status, $code);
        return new $class($full, $code, $status, $field, $requestId, $error ?? []);
    }

    /**
     * The exception class for a status and code.
     *
     * @return class-string<HeraldException>
     */
    private static function classFor(int $status, string $code): string
    {
        return match (true) {
            $status === 400 => ValidationFailed::class,
            $status === 401 => Unauthorized::class,
            $status === 404 && $code === 'no_such_client' => ClientNotFound::class,
            $status === 404 => NotFound::class,
            $status === 413 => PayloadTooLarge::class,
            // The gateway's "command sent, no answer": distinct from a proxy's 504, which accepted nothing.
            $status === 504 && $code === 'engine_timeout' => OutcomeUnknown::class,
            \in_array($status, [502, 503, 504], true) => ServiceUnavailable::class,
            default => HeraldException::class,
        };
    }

    /** Whether a failed call may succeed when repeated: no answer, a 5xx, or a 429. */
    public static function isRetryable(HeraldException $e): bool
    {
        $status = $e->getStatus();
        return $status === 0 || $status === 429 || $status >= 500;
    }

    private static function codeForStatus(int $status): string
    {
        return match ($status) {
            400 => 'invalid_body',
            401 => 'unauthorized',
            404 => 'not_found',
            413 => 'body_too_large',
            502, 503, 504 => 'service_unavailable',
            default => 'http_' . $status,
        };
    }
}
