<?php

declare(strict_types=1);

namespace Herald;

use Herald\Internal\Options;

/**
 * How a RedisPublisher writes into the gateway's Redis. The defaults are the gateway's; set by name the ones
 * your gateway configures otherwise:
 *
 *     $publisher = new Herald\RedisPublisher($redis, new Herald\RedisPublisherOptions(prefix: 'myapp'));
 *
 * Invalid values are refused here, with an \InvalidArgumentException.
 */
final class RedisPublisherOptions
{
    /**
     * @param string|null $script Path of the `publish.lua` to run; null means the copy shipped with this SDK
     *                            (`resources/publish.lua`), the script of the gateway of the same version.
     * @param string $prefix The gateway's Redis key prefix (`HERALD_REDIS_PREFIX`): no braces, no spaces.
     * @param int|null $historySize Messages kept per channel (>= 0); null means the gateway's default, 1000.
     * @param int|null $historyTtl Milliseconds a channel's history lives after its last publish (>= 1); null: 600000.
     * @param int|null $historyMetaTtl Milliseconds seq and epoch live after the last use (>= 1); null: 3600000 (the gateway's default).
     * @param int|null $idempotencyTtl Milliseconds a publish id is remembered (>= 1); null: 300000.
     * @param bool $sharded The gateway uses sharded pub/sub (Redis Cluster 7+).
     * @param bool $presence Count the channel's subscribers (and whether a `user:` channel's user is online)
     *                       after each publish, one ZCOUNT more; false reports 0 and `online: false`.
     * @throws \InvalidArgumentException for a value out of range.
     */
    public function __construct(
        public readonly ?string $script = null,
        public readonly string $prefix = 'herald',
        public readonly ?int $historySize = null,
        public readonly ?int $historyTtl = null,
        public readonly ?int $historyMetaTtl = null,
        public readonly ?int $idempotencyTtl = null,
        public readonly bool $sharded = false,
        public readonly bool $presence = true,
    ) {
        if ($prefix === '' || preg_match('/[{}\s]/', $prefix) === 1) {
            throw new \InvalidArgumentException('prefix must be a non-empty string without braces or spaces');
        }
        if ($historySize !== null && $historySize < 0) {
            throw new \InvalidArgumentException('option historySize must be a non-negative integer');
        }
        $ttls = ['historyTtl' => $historyTtl, 'historyMetaTtl' => $historyMetaTtl, 'idempotencyTtl' => $idempotencyTtl];
        foreach ($ttls as $name => $ttl) {
            if ($ttl !== null && $ttl < 1) {
                throw new \InvalidArgumentException("option $name must be a positive integer (milliseconds)");
            }
        }
    }

    /**
     * The options from the array earlier versions of RedisPublisher took (`['prefix' => 'myapp']`).
     *
     * @param array<string, mixed> $options
     * @throws \InvalidArgumentException for an unknown key or a value of the wrong type.
     */
    public static function fromArray(array $options): self
    {
        return Options::fromArray(self::class, $options);
    }
}
