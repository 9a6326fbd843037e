<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * No HTTP response arrived: the gateway is down or unreachable (connection refused, DNS failure, reset), or
 * it did not answer within the timeout. getStatus() is 0; getErrorCode() is `timeout` for a timeout and
 * `transport_error` otherwise. Publishes are safe to retry with the same id.
 */
final class TransportError extends HeraldException
{
    /** Whether the request timed out (connect or total timeout), as opposed to failing at once. */
    public function isTimeout(): bool
    {
        return $this->getErrorCode() === 'timeout';
    }
}
