<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** The answer to a publish to one or several channels. */
final class PublishResult implements ChannelsResult
{
    use ChannelsResultMethods;

    /**
     * @param string|null $id The idempotency id of the publish: yours, or the one the SDK generated (when
     *                        retries are on); null when the publish had none.
     * @param array<string, ChannelResult> $channels One result per channel, keyed by channel name.
     */
    public function __construct(
        public readonly ?string $id,
        public readonly array $channels,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromArray(array $body, bool $ownDuplicate = false): self
    {
        return new self(Read::optionalString($body, 'id'), self::channelsFrom($body, $ownDuplicate));
    }
}
