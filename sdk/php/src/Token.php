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
     * An HS256 connection token for a user; see TokenIssuer::forUser().
     *
     * @param list<string> $channels Glob patterns of the `private:` channels the user may subscribe to.
     * @param int $ttl Seconds until the token expires.
     * @param string|null $secret The JWT secret; null reads `HERALD_JWT_SECRET` from the environment.
     * @throws \InvalidArgumentException for an invalid user id or pattern, or no secret.
     */
    public static function forUser(string|int $userId, array $channels = [], int $ttl = 3600, #[\SensitiveParameter] ?string $secret = null): string
    {
        if ($secret === null) {
            $env = getenv('HERALD_JWT_SECRET');
            if (!\is_string($env) || trim($env) === '') {
                throw new \InvalidArgumentException('no JWT secret: pass $secret or set HERALD_JWT_SECRET');
            }
            $secret = trim(explode(',', $env)[0]);
        }
        return (new TokenIssuer($secret))->forUser($userId, $channels, $ttl);
    }
}
