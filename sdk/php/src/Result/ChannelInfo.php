<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** The answer to Client::channel(): a channel's subscribers and current position. */
final class ChannelInfo
{
    public function __construct(
        /** The channel name. */
        public readonly string $channel,
        /** Subscribed connections, cluster-wide. */
        public readonly int $subscribers,
        /** The seq of the last message published in this epoch (0 when none). */
        public readonly int $seq,
        /** The channel's current epoch. */
        public readonly string $epoch,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromArray(array $body): self
    {
        return new self(Read::string($body, 'channel'), Read::int($body, 'subscribers'), Read::int($body, 'seq'), Read::string($body, 'epoch'));
    }
}
