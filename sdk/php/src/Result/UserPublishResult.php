<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/**
 * The answer to Client::publishToUser(): the publish to `user:<id>`, and whether the user was online.
 * `online === false` is not an error: the user has no connection right now. The message is still kept
 * in the channel's history and recovered if the user reconnects within the history window; with
 * `inbox: true` it is kept in the user's inbox until a client of the user acknowledges it (`stored`, and
 * `live` when it was delivered at once as well), and `seq` is 0.
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
    /** Connections of the user that were subscribed (every tab and device), cluster-wide; 0 for an inbox publish. */
    public readonly int $subscribers;
    /** An inbox publish: the message id (acknowledged by the user's clients; receipt(), removeFromInbox()). */
    public readonly ?string $messageId;
    /** Whether the message was kept in the user's inbox until acknowledged (an inbox publish). */
    public readonly bool $stored;
    /** Whether it was handed to a connection of the user right away. */
    public readonly bool $live;


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
        $this->messageId = $c->messageId;
        $this->stored = $c->stored;
        $this->live = $c->live ?? $this->online;
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
