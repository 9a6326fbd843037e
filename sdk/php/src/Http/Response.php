<?php

declare(strict_types=1);

namespace Herald\Http;

/** One HTTP response as a Transport returns it. */
final class Response
{
    /** @var array<string, string> header name (lower case) => value */
    public readonly array $headers;

    /**
     * @param int $status HTTP status code.
     * @param array<string, string> $headers Header name => value; names are stored in lower case.
     * @param string $body The raw response body.
     */
    public function __construct(
        public readonly int $status,
        array $headers,
        public readonly string $body,
    ) {
        $lower = [];
        foreach ($headers as $name => $value) {
            $lower[strtolower((string) $name)] = $value;
        }
        $this->headers = $lower;
    }

    /** A header's value by case-insensitive name, or null. */
    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }
}
