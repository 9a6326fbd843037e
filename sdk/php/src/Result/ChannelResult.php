<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** What a publish did in one channel. */
final class ChannelResult
{
    /**
     * @param string $channel The channel name.
     * @param int $seq The seq assigned to the message in this channel (that of the original publish when `duplicate`).
     * @param string $epoch The channel's epoch the seq belongs to.
     * @param bool $duplicate True when the id was already published to this channel: nothing was published now.
     * @param int $subscribers Connections subscribed to the channel (cluster-wide) right after the publish.
     * @param bool|null $online For `user:` channels: whether the user has a connection; null for other channels.
     */
    public function __construct(
        public readonly string $channel,
        public readonly int $seq,
        public readonly string $epoch,
        public readonly bool $duplicate,
        public readonly int $subscribers,
        public readonly ?bool $online = null,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $r
     */
    public static function fromArray(string $channel, array $r, bool $duplicate): self
    {
        return new self(
            $channel,
            Read::int($r, 'seq'),
            Read::string($r, 'epoch'),
            $duplicate,
            Read::int($r, 'subscribers'),
            \array_key_exists('online', $r) ? Read::bool($r, 'online') : null,
        );
    }
}
