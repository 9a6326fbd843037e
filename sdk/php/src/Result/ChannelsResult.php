<?php

declare(strict_types=1);

namespace Herald\Result;

/**
 * What a publish to channels did, channel by channel: implemented by PublishResult (Client::publish()) and
 * UserPublishResult (Client::publishToUser()). Both also have the public properties `?string $id` (the
 * publish id) and `array<string, ChannelResult> $channels` (keyed by channel name).
 */
interface ChannelsResult
{
    /**
     * The result of one channel of this publish.
     *
     * @throws \OutOfBoundsException when the publish did not go to this channel.
     */
    public function channel(string $name): ChannelResult;

    /** The result of the first (for a one-channel publish: the only) channel. */
    public function first(): ChannelResult;

    /** Whether nothing was published because the id had already been published to every channel. */
    public function isDuplicate(): bool;
}
