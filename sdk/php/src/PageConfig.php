<?php

declare(strict_types=1);

namespace Herald;

/**
 * What Page::script() hands to the browser: the options of the browser SDK's `createClient()` that can
 * travel as JSON, plus values of your own.
 *
 *     <?= Herald\Page::script(new Herald\PageConfig(url: 'wss://push.example.com/ws', token: $jwt)) ?>
 *
 * Null fields are left out, so the browser SDK applies its own defaults.
 */
final class PageConfig implements \JsonSerializable
{
    /**
     * @param string $url The gateway's WebSocket URL (`ws://` or `wss://`), e.g. `wss://push.example.com/ws`.
     * @param string|null $token A connection token (Token::forUser()); null connects anonymously.
     * @param int|null $pingInterval Milliseconds between the SDK's pings (browser SDK default 25000).
     * @param int|null $connectTimeout Milliseconds to wait for `connected` (default 10000).
     * @param int|null $minDelay Smallest reconnect delay window, in milliseconds.
     * @param int|null $maxDelay Largest reconnect delay window, in milliseconds.
     * @param int|null $stableAfter Milliseconds after which a connection counts as stable (backoff reset).
     * @param int|null $visibilityTimeout Milliseconds a hidden tab keeps its connection.
     * @param array<string, mixed> $extra Values of your own for the page's code (`['user' => 42]`), added
     *                                    after the fields above; a key may not repeat one of them.
     * @throws \InvalidArgumentException for an empty URL or token, a negative duration, or an extra key
     *                                   that repeats a field.
     */
    public function __construct(
        public readonly string $url,
        #[\SensitiveParameter] public readonly ?string $token = null,
        public readonly ?int $pingInterval = null,
        public readonly ?int $connectTimeout = null,
        public readonly ?int $minDelay = null,
        public readonly ?int $maxDelay = null,
        public readonly ?int $stableAfter = null,
        public readonly ?int $visibilityTimeout = null,
        public readonly array $extra = [],
    ) {
        // The browser SDK checks the same: a non-empty url, a non-empty token when there is one.
        if (trim($url) === '') {
            throw new \InvalidArgumentException("the url is empty: pass the gateway's WebSocket URL, e.g. wss://push.example.com/ws");
        }
        if ($token === '') {
            throw new \InvalidArgumentException('the token is empty: pass a token, or null to connect anonymously');
        }
        foreach ($this->typed() as $name => $value) {
            if (\is_int($value) && $value < 0) {
                throw new \InvalidArgumentException("$name must be a number of milliseconds >= 0");
            }
        }
        $repeated = array_intersect(array_map('strval', array_keys($extra)), array_keys($this->typed()));
        if ($repeated !== [] || array_is_list($extra) && $extra !== []) {
            throw new \InvalidArgumentException('extra must map names to values and not repeat a field: ' . implode(', ', $repeated));
        }
    }

    /**
     * The config as the page receives it: the fields that are set, then `extra`.
     *
     * @return array<string, mixed>
     */
    public function jsonSerialize(): array
    {
        return array_filter($this->typed(), static fn ($v) => $v !== null) + $this->extra;
    }

    /** @return array<string, string|int|null> */
    private function typed(): array
    {
        return [
            'url' => $this->url,
            'token' => $this->token,
            'pingInterval' => $this->pingInterval,
            'connectTimeout' => $this->connectTimeout,
            'minDelay' => $this->minDelay,
            'maxDelay' => $this->maxDelay,
            'stableAfter' => $this->stableAfter,
            'visibilityTimeout' => $this->visibilityTimeout,
        ];
    }

    /** Keeps the token out of var_dump() and print_r(). @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return ['token' => $this->token === null ? null : '(hidden)'] + $this->jsonSerialize();
    }
}
