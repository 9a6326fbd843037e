<?php

declare(strict_types=1);

namespace Herald;

/**
 * One-line connection tokens: `Herald\Token::forUser(42)`. A shortcut for TokenIssuer that takes the
 * secret as an argument or from the `HERALD_JWT_SECRET` environment variable (the first one when it
 * lists several for rotation).
 */
final class Token
{
    /**
     * An HS256 connection token for a user; see TokenIssuer::forUser(). Pass what you need by name:
     * `Token::forUser(42, channels: ['private:team-7:*'], ttl: 600, secret: $secret)`.
     *
     * @param list<string> $channels Glob patterns of the `private:` channels the user may subscribe to.
     * @param int|null $ttl Seconds until the token expires; null for a token that never expires.
     * @param string|null $secret The JWT secret; null reads `HERALD_JWT_SECRET` from the environment.
     * @param array<string, mixed> $claims Extra claims (not sub, exp, iat, channels, publish).
     * @param list<string> $publish Glob patterns of the channels the browser may publish to (none by default).
     * @throws \InvalidArgumentException for an invalid user id, pattern or claim, or no secret.
     */
    public static function forUser(
        string|int $userId,
        array $channels = [],
        ?int $ttl = 3600,
        #[\SensitiveParameter] ?string $secret = null,
        array $claims = [],
        array $publish = [],
    ): string {
        if ($secret === null) {
            $env = getenv('HERALD_JWT_SECRET');
            if (!\is_string($env) || trim($env) === '') {
                throw new \InvalidArgumentException('no JWT secret: pass $secret or set HERALD_JWT_SECRET');
            }
            $secret = trim(explode(',', $env)[0]);
        }
        return (new TokenIssuer($secret))->forUser($userId, $channels, $ttl, $claims, $publish);
    }
}
