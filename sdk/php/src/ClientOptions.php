<?php

declare(strict_types=1);

namespace Herald;

use Herald\Http\Transport;
use Herald\Internal\Options;

/**
 * How a Client talks to the gateway: timeouts, retries and the transport. Every field has a default;
 * set the ones you need by name:
 *
 *     $herald = new Herald\Client($url, $apiKey, new Herald\ClientOptions(timeout: 2.0, retries: 1));
 *
 * Invalid values are refused here, with an \InvalidArgumentException, before any request.
 */
final class ClientOptions
{
    /** How the backoff waits: `function (int $milliseconds): void`; null means usleep(). */
    public readonly ?\Closure $sleep;

    /**
     * @param float $timeout Seconds a whole request may take (> 0).
     * @param float $connectTimeout Seconds to establish the connection (> 0).
     * @param int $retries Extra attempts for calls that are safe to repeat (every call except disconnecting
     *                     one client), after no answer, a timeout, a 5xx or a 429. With retries on, a
     *                     publish without an id gets a generated one, so a retried publish is published
     *                     once. 0 turns retries off.
     * @param int $retryDelay Base of the exponential backoff, in milliseconds (full jitter: attempt n waits
     *                        a random time up to `retryDelay * 2^n`).
     * @param int $maxRetryDelay Cap of the backoff window, in milliseconds.
     * @param Transport|null $transport How requests are sent; null means a CurlTransport.
     * @param callable(int): void|null $sleep How the backoff waits (tests replace it); null means usleep().
     * @throws \InvalidArgumentException for a value out of range.
     */
    public function __construct(
        public readonly float $timeout = 5.0,
        public readonly float $connectTimeout = 2.0,
        public readonly int $retries = 2,
        public readonly int $retryDelay = 100,
        public readonly int $maxRetryDelay = 2000,
        public readonly ?Transport $transport = null,
        ?callable $sleep = null,
    ) {
        foreach (['timeout' => $timeout, 'connectTimeout' => $connectTimeout] as $name => $seconds) {
            if (!($seconds > 0) || is_infinite($seconds)) {
                throw new \InvalidArgumentException("option $name must be a number of seconds greater than 0");
            }
        }
        foreach (['retries' => $retries, 'retryDelay' => $retryDelay, 'maxRetryDelay' => $maxRetryDelay] as $name => $value) {
            if ($value < 0) {
                throw new \InvalidArgumentException("option $name must be an integer >= 0");
            }
        }
        $this->sleep = $sleep === null ? null : \Closure::fromCallable($sleep);
    }

    /**
     * The options from the array earlier versions of the Client took (`['timeout' => 3.0, 'retries' => 0]`).
     *
     * @param array<string, mixed> $options
     * @throws \InvalidArgumentException for an unknown key or a value of the wrong type.
     */
    public static function fromArray(array $options): self
    {
        return Options::fromArray(self::class, $options);
    }
}
