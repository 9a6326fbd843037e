<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** One message from a channel's history, exactly as subscribers received it. */
final class Message
{
    public function __construct(
        /** The application message type. */
        public readonly string $type,
        /** The channel it was published to. */
        public readonly string $channel,
        /**
         * The payload, decoded into PHP arrays (a JSON `{}` reads back as `[]`).
         *
         * @var array<mixed>
         */
        public readonly array $payload,
        /** Its seq in the channel. */
        public readonly int $seq,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $m
     */
    public static function fromArray(array $m): self
    {
        return new self(Read::string($m, 'type'), Read::string($m, 'channel'), Read::array($m, 'payload'), Read::int($m, 'seq'));
    }
}
