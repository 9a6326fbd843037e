<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/**
 * The answer to Client::publishToUser(): the publish to `user:<id>`, and whether the user was online.
 * `online === false` is not an error: the user has no connection right now. The message is still kept
 * in the channel's history and recovered if the user reconnects within the history window.
 */
final class UserPublishResult implements ChannelsResult
{
    use ChannelsResultMethods;

    /** The user id. */
    public readonly string $userId;
    /** Whether the user had at least one connection when the message was published. */
    public readonly bool $online;
    /** The message's seq in the `user:<id>` channel. */
    public readonly int $seq;
    /** The epoch of `user:<id>` the seq belongs to. */
    public readonly string $epoch;
    /** True when the id was already published: nothing was published now. */
    public readonly bool $duplicate;
    /** Connections of the user that were subscribed (every tab and device), cluster-wide. */
    public readonly int $subscribers;

    /**
     * @param string $userId The user id.
     * @param string|null $id The idempotency id of the publish (yours or generated), or null.
     * @param array<string, ChannelResult> $channels The result of the `user:<id>` channel, keyed by name.
     */
    public function __construct(string $userId, public readonly ?string $id, public readonly array $channels)
    {
        $c = $this->channel('user:' . $userId);
        $this->userId = $userId;
        $this->online = $c->online ?? $c->subscribers > 0;
        $this->seq = $c->seq;
        $this->epoch = $c->epoch;
        $this->duplicate = $c->duplicate;
        $this->subscribers = $c->subscribers;
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromUserArray(string $userId, array $body, bool $ownDuplicate = false): self
    {
        return new self($userId, Read::optionalString($body, 'id'), self::channelsFrom($body, $ownDuplicate));
    }
}
