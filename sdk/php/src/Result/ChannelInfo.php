<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** The answer to Client::channel(): a channel's subscribers and current position, and a presence channel's members. */
final class ChannelInfo
{
    /**
     * @param array<string, mixed>|null $members presence:* channels: user id => the `info` claim of its token
     *   (null when it has none), at most 1000 users; null for other channels
     */
    public function __construct(
        /** The channel name. */
        public readonly string $channel,
        /** Subscribed connections, cluster-wide. */
        public readonly int $subscribers,
        /** The seq of the last message published in this epoch (0 when none). */
        public readonly int $seq,
        /** The channel's current epoch. */
        public readonly string $epoch,
        /** presence:* channels: the number of distinct users in it; null for other channels. */
        public readonly ?int $users = null,
        public readonly ?array $members = null,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromArray(array $body): self
    {
        $members = null;
        if (isset($body['members']) && \is_array($body['members'])) {
            $members = [];
            foreach ($body['members'] as $m) {
                if (\is_array($m) && isset($m['user']) && \is_string($m['user'])) {
                    $members[$m['user']] = $m['info'] ?? null;
                }
            }
        }
        $users = isset($body['users']) && \is_int($body['users']) ? $body['users'] : null;
        return new self(
            Read::string($body, 'channel'),
            Read::int($body, 'subscribers'),
            Read::int($body, 'seq'),
            Read::string($body, 'epoch'),
            $users,
            $members,
        );
    }
}
