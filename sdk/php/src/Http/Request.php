<?php

declare(strict_types=1);

namespace Herald\Http;

/** One HTTP request as the Client hands it to a Transport. */
final class Request
{
    /**
     * @param string $method `GET` or `POST`.
     * @param string $url Absolute URL.
     * @param array<string, string> $headers Header name => value.
     * @param string|null $body Request body (JSON), null for none.
     * @param float $timeout Total time allowed for the request, in seconds.
     * @param float $connectTimeout Time allowed to establish the connection, in seconds.
     */
    public function __construct(
        public readonly string $method,
        public readonly string $url,
        public readonly array $headers = [],
        public readonly ?string $body = null,
        public readonly float $timeout = 5.0,
        public readonly float $connectTimeout = 2.0,
    ) {
    }
}
