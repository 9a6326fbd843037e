<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** One message kept in a user's inbox, as Client::inbox() lists it. */
final class InboxMessage
{
    /** @param array<mixed> $payload The payload, decoded into PHP arrays. */
    public function __construct(
        /** The message id (what the user's clients acknowledge). */
        public readonly string $id,
        /** The application message type. */
        public readonly string $type,
        /** `user:<id>`. */
        public readonly string $channel,
        public readonly array $payload,
        /** When it was published, in ms since the epoch. */
        public readonly int $time,
        /** When it expires unless acknowledged, in ms since the epoch. */
        public readonly int $expires,
        /** Whether a delivery receipt was asked for. */
        public readonly bool $receipt,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $m
     */
    public static function fromArray(array $m): self
    {
        return new self(
            Read::string($m, 'inbox'),
            Read::string($m, 'type'),
            Read::string($m, 'channel'),
            Read::array($m, 'payload'),
            Read::int($m, 'time'),
            Read::int($m, 'expires'),
            Read::bool($m, 'receipt'),
        );
    }
}
