<?php

declare(strict_types=1);

namespace Herald;

use Herald\Internal\Json;

/**
 * Issues connection tokens: JWTs signed with HS256 and one of the gateway's `HERALD_JWT_SECRET` secrets,
 * made with hash_hmac (no library). A token says who the connection is (`sub`, the user id: the gateway
 * subscribes it to `user:<id>`), until when (`exp`), which `private:` and `presence:` channels it may
 * subscribe to (`channels`, glob patterns: `*` any run of characters, `?` one character), and which channels
 * the browser may publish to itself (`publish`, the same patterns; none by default).
 *
 *     $tokens = new Herald\TokenIssuer(getenv('HERALD_JWT_SECRET'));
 *     $jwt = $tokens->forUser($user->id, ['private:team-7:*'], ttl: 3600);
 */
final class TokenIssuer
{
    /** The gateway refuses shorter secrets: HS256 needs 256 bits. */
    public const MIN_SECRET_LENGTH = 32;
    /** The gateway's limits on the `channels` and `publish` claims. */
    public const MAX_PATTERNS = 100;
    public const MAX_PATTERN_LENGTH = 200;

    private const USER_ID = '/^[A-Za-z0-9_\-:.@=]{1,195}$/D';
    private const RESERVED_CLAIMS = ['sub', 'exp', 'iat', 'channels', 'publish'];
    /** The gateway's limits: the `info` claim's JSON (bytes) and the whole token (characters of a `connect`). */
    public const MAX_INFO_BYTES = 1024;
    public const MAX_TOKEN_LENGTH = 8192;

    /** @var \Closure(): int */
    private readonly \Closure $clock;

    /**
     * @param string $secret One of the gateway's JWT secrets (at least 32 characters). With several
     *                       configured for rotation, sign with the newest.
     * @param callable(): int|null $clock Current Unix time in seconds (default: time()).
     * @throws \InvalidArgumentException for a secret shorter than 32 characters.
     */
    public function __construct(#[\SensitiveParameter] private readonly string $secret, ?callable $clock = null)
    {
        if (\strlen($secret) < self::MIN_SECRET_LENGTH) {
            throw new \InvalidArgumentException(
                sprintf('the JWT secret must be at least %d characters (the gateway refuses shorter HERALD_JWT_SECRET values)', self::MIN_SECRET_LENGTH),
            );
        }
        $this->clock = $clock !== null ? \Closure::fromCallable($clock) : static fn (): int => time();
    }

    /**
     * A token for one user.
     *
     * @param string|int $userId The user id: 1-195 characters of `[A-Za-z0-9_\-:.@=]`.
     * @param list<string> $channels Glob patterns of the `private:` channels the user may subscribe to
     *                               (at most 100, each at most 200 characters), e.g. `private:team-7:*`.
     * @param int|null $ttl Seconds until the token expires (`exp`); null for a token that never expires.
     *                      The gateway closes a connection whose token expires with 4401, and the browser
     *                      SDK then asks its `getToken` callback for a new one.
     * @param array<string, mixed> $claims Extra claims, e.g. `['nbf' => time() + 60]` or `['info' => ['name' => 'Ann']]`
     *                                    (what presence members and the publish hook see); not sub, exp, iat,
     *                                    channels, publish.
     * @param list<string> $publish Glob patterns of the channels the connection may publish to from the browser
     *                              (`publish` frames; docs/protocol.md), e.g. `chat:room-7`. None: it cannot publish.
     * @throws \InvalidArgumentException for a user id, pattern or claim the gateway would refuse.
     */
    public function forUser(string|int $userId, array $channels = [], ?int $ttl = 3600, array $claims = [], array $publish = []): string
    {
        $userId = (string) $userId;
        if (preg_match(self::USER_ID, $userId) !== 1) {
            throw new \InvalidArgumentException("user id '$userId' is not valid: 1-195 characters of [A-Za-z0-9_-:.@=]");
        }
        self::checkPatterns('channels', $channels);
        self::checkPatterns('publish', $publish);
        if ($ttl !== null && $ttl <= 0) {
            throw new \InvalidArgumentException('ttl must be a positive number of seconds, or null for no expiry');
        }
        $reserved = array_intersect(array_keys($claims), self::RESERVED_CLAIMS);
        if ($reserved !== []) {
            throw new \InvalidArgumentException('claims cannot set ' . implode(', ', $reserved) . ': use the userId, channels, ttl and publish arguments');
        }

        if (\array_key_exists('info', $claims) && \strlen(Json::encode($claims['info'])) > self::MAX_INFO_BYTES) {
            throw new \InvalidArgumentException(sprintf(
                'the info claim must be at most %d bytes of JSON (the gateway closes the connection with 4501)',
                self::MAX_INFO_BYTES,
            ));
        }

        $now = ($this->clock)();
        $payload = ['sub' => $userId, 'iat' => $now];
        if ($ttl !== null) {
            $payload['exp'] = $now + $ttl;
        }
        if ($channels !== []) {
            $payload['channels'] = $channels;
        }
        if ($publish !== []) {
            $payload['publish'] = $publish;
        }
        $token = $this->sign($payload + $claims);
        if (\strlen($token) > self::MAX_TOKEN_LENGTH) {
            throw new \InvalidArgumentException(sprintf(
                'the token is %d characters, over the %d a connect frame may carry: grant fewer or shorter patterns (a wildcard: private:team-7:*)',
                \strlen($token),
                self::MAX_TOKEN_LENGTH,
            ));
        }
        return $token;
    }

    /**
     * A claim of channel patterns as the gateway accepts it: a list of at most 100 strings of 1-200 characters.
     *
     * @param array<mixed> $patterns
     */
    private static function checkPatterns(string $claim, array $patterns): void
    {
        if (!array_is_list($patterns) || \count($patterns) > self::MAX_PATTERNS) {
            throw new \InvalidArgumentException(sprintf('%s must be a list of at most %d patterns', $claim, self::MAX_PATTERNS));
        }
        foreach ($patterns as $p) {
            if (!\is_string($p) || $p === '' || \strlen($p) > self::MAX_PATTERN_LENGTH) {
                throw new \InvalidArgumentException(sprintf('each %s pattern must be a string of 1-%d characters', $claim, self::MAX_PATTERN_LENGTH));
            }
        }
    }

    /**
     * Signs any claims as an HS256 JWT (for claims forUser() does not cover). The gateway requires `sub`.
     *
     * @param array<string, mixed> $claims
     */
    public function sign(array $claims): string
    {
        $head = self::base64url(Json::encode(['alg' => 'HS256', 'typ' => 'JWT']));
        $body = self::base64url(Json::encode($claims === [] ? new \stdClass() : $claims));
        $signature = self::base64url(hash_hmac('sha256', "$head.$body", $this->secret, true));
        return "$head.$body.$signature";
    }

    /** Base64url without padding (RFC 7515 section 2). */
    public static function base64url(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    /** Keeps the secret out of var_dump() and print_r(). @return array<string, string> */
    public function __debugInfo(): array
    {
        return ['secret' => '(hidden)'];
    }
}
