<?php

declare(strict_types=1);

namespace Herald\Internal;

use Herald\Exception\HeraldException;
use Herald\Exception\OutcomeUnknown;
use Herald\Exception\TransportError;
use Herald\Http\Request;
use Herald\Http\Transport;
use Herald\Version;

/**
 * Sends API calls: headers, JSON, typed errors, and retries with capped exponential backoff and full
 * jitter for the calls the Client marks as safe to repeat.
 *
 * @internal
 */
final class Requester
{
    /** @var \Closure(int): void */
    private \Closure $sleep;

    /** @param callable(int): void $sleep Waits the given number of milliseconds. */
    public function __construct(
        private readonly string $baseUrl,
        private readonly string $apiKey,
        private readonly Transport $transport,
        private readonly float $timeout,
        private readonly float $connectTimeout,
        private readonly int $retries,
        private readonly int $retryDelay,
        private readonly int $maxRetryDelay,
        callable $sleep,
    ) {
        $this->sleep = \Closure::fromCallable($sleep);
    }

    /**
     * One segment of a path to `call`: percent-encoded, and `.` or `..` (valid channel names and user ids) as
     * `%2E`, which the gateway reads as data, where a literal dot segment would be removed on the way (by curl,
     * proxies, the gateway).
     */
    public static function segment(string $value): string
    {
        return $value === '.' || $value === '..' ? str_repeat('%2E', \strlen($value)) : rawurlencode($value);
    }

    /**
     * @param array<mixed>|object|null $body Encoded as JSON for a POST.
     * @param bool $retry Whether the call may be sent again after a failure that may be transient.
     * @param list<string|null>|null $publishIds For a publish: the idempotency id of each message (null for
     *                                           a message without one). A publish whose outcome is unknown
     *                                           (504 `engine_timeout`) is sent again only when every message
     *                                           has an id; the same request, so the same ids.
     * @return array{0: array<mixed>, 1: int} The decoded response body, and how many attempts it took.
     * @throws HeraldException OutcomeUnknown when any attempt's outcome was unknown and none succeeded: a 504
     *                         `engine_timeout`, or for a publish a request sent whose answer never came.
     */
    public function call(string $method, string $path, array|object|null $body, bool $retry, ?array $publishIds = null): array
    {
        $requestId = 'php-' . bin2hex(random_bytes(8));
        $headers = [
            'Authorization' => 'Bearer ' . $this->apiKey,
            'Accept' => 'application/json',
            'User-Agent' => 'herald-php/' . Version::VERSION . ' PHP/' . PHP_VERSION,
            'X-Request-Id' => $requestId,
        ];
        $json = null;
        if ($body !== null) {
            $json = Json::encode($body);
            $headers['Content-Type'] = 'application/json; charset=utf-8';
        }
        $request = new Request($method, $this->baseUrl . $path, $headers, $json, $this->timeout, $this->connectTimeout);

        $attempts = $retry ? $this->retries + 1 : 1;
        $identified = $publishIds === null || !\in_array(null, $publishIds, true);
        $unknown = null;
        for ($attempt = 1;; $attempt++) {
            try {
                return [$this->once($request, $method, $path, $requestId), $attempt];
            } catch (HeraldException $e) {
                $unknown ??= self::unknown($e, $publishIds);
                $again = $attempt < $attempts && Errors::isRetryable($e) && ($unknown === null || $identified);
                if (!$again) {
                    throw $unknown === null ? $e : self::outcomeUnknown($unknown, $e, $attempt, $publishIds ?? []);
                }
                ($this->sleep)($this->backoff($attempt - 1));
            }
        }
    }

    /**
     * The attempt's failure as an unknown outcome, or null when nothing happened for sure: a 504
     * `engine_timeout`, or for a publish a request that went out and whose answer was lost (the gateway may have
     * published it).
     *
     * @param list<string|null>|null $publishIds
     */
    private static function unknown(HeraldException $e, ?array $publishIds): ?OutcomeUnknown
    {
        if ($e instanceof OutcomeUnknown) {
            return $e;
        }
        if ($publishIds === null || !$e instanceof TransportError || ($e->getDetails()['sent'] ?? true) === false) {
            return null;
        }
        return new OutcomeUnknown(
            $e->getMessage() . ' after the request was sent',
            $e->getErrorCode(),
            0,
            null,
            $e->getRequestId(),
            $e->getDetails(),
            $e,
            $publishIds,
        );
    }

    /**
     * The exception for a call of which one attempt had an unknown outcome: whatever the later attempts
     * answered, the message may have been published, so the caller must retry with the same id.
     *
     * @param list<string|null> $publishIds
     */
    private static function outcomeUnknown(OutcomeUnknown $first, HeraldException $last, int $attempts, array $publishIds): OutcomeUnknown
    {
        $ids = array_values(array_filter($publishIds, static fn (?string $id): bool => $id !== null));
        $advice = match (true) {
            $publishIds === [] => 'the call may have taken effect',
            \count($ids) < \count($publishIds) => 'it may have been published; without an id it cannot be retried safely',
            default => 'it may have been published; retry later with the same id (' . implode(', ', $ids) . ')',
        };
        $message = sprintf('%s after %d attempt(s): outcome unknown, %s', $first->getMessage(), $attempts, $advice);
        if ($last !== $first && $last !== $first->getPrevious()) {
            $message .= sprintf('; the last attempt failed with %s (HTTP %d)', $last->getErrorCode(), $last->getStatus());
        }
        return new OutcomeUnknown(
            $message,
            $first->getErrorCode(),
            $first->getStatus(),
            $first->getField(),
            $first->getRequestId(),
            $first->getDetails(),
            $last,
            $publishIds,
        );
    }

    /** Full jitter: a random delay in [0, min(max, base * 2^n)] milliseconds. */
    private function backoff(int $n): int
    {
        $cap = (int) min($this->maxRetryDelay, $this->retryDelay * (2 ** min($n, 30)));
        return $cap > 0 ? random_int(0, $cap) : 0;
    }

    /** @return array<mixed> */
    private function once(Request $request, string $method, string $path, string $requestId): array
    {
        $response = $this->transport->send($request);
        if ($response->status < 200 || $response->status >= 300) {
            throw Errors::fromResponse($response, $method, $path, $requestId);
        }
        try {
            return Json::decode($response->body);
        } catch (\JsonException $e) {
            throw new HeraldException(
                sprintf('%s %s: the response (HTTP %d) is not JSON: %s', $method, $path, $response->status, substr($response->body, 0, 100)),
                'invalid_response',
                $response->status,
                null,
                $response->header('x-request-id') ?? $requestId,
                [],
                $e,
            );
        }
    }
}
