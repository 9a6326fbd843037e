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
     * @param string|null $messageId An inbox publish (`inbox: true`): the message id (to acknowledge, remove, or
     *                               ask for its receipt); null otherwise. Such a message is not sequenced: seq 0.
     * @param bool $stored Whether it was kept in the user's inbox (an inbox publish).
     * @param bool|null $live For `user:` channels: whether it was handed to a connection of the user right away.
     */
    public function __construct(
        public readonly string $channel,
        public readonly int $seq,
        public readonly string $epoch,
        public readonly bool $duplicate,
        public readonly int $subscribers,
        public readonly ?bool $online = null,
        public readonly ?string $messageId = null,
        public readonly bool $stored = false,
        public readonly ?bool $live = null,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $r
     */
    public static function fromArray(string $channel, array $r, bool $duplicate): self
    {
        // An inbox publish has no seq, epoch or subscriber count: the message is kept for the user instead.
        $inbox = \array_key_exists('message', $r);
        return new self(
            $channel,
            $inbox ? 0 : Read::int($r, 'seq'),
            $inbox ? '' : Read::string($r, 'epoch'),
            $duplicate,
            $inbox ? 0 : Read::int($r, 'subscribers'),
            \array_key_exists('online', $r) && $r['online'] !== null ? Read::bool($r, 'online') : null,
            $inbox ? Read::string($r, 'message') : null,
            \array_key_exists('stored', $r) && Read::bool($r, 'stored'),
            \array_key_exists('live', $r) ? Read::bool($r, 'live') : null,
        );
    }
}
