<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/**
 * The answer to Client::history(). `complete === false` (with no messages) means the history no longer
 * reaches back to `since + 1`, or the epoch changed: the messages are lost, reload the state instead.
 * `complete === true` means no gap after `since`, not that every message fit: page by calling again with
 * `since` set to the last message's seq until it reaches `$seq`.
 */
final class HistoryPage
{
    /** @param list<Message> $messages Oldest first. */
    public function __construct(
        /** The channel name. */
        public readonly string $channel,
        /** The channel's current seq. */
        public readonly int $seq,
        /** The channel's current epoch. */
        public readonly string $epoch,
        /** Whether there is no gap after `since`. */
        public readonly bool $complete,
        public readonly array $messages,
    ) {
    }

    /** The seq of the last message in this page, or null for an empty page. */
    public function lastSeq(): ?int
    {
        $key = array_key_last($this->messages);
        return $key === null ? null : $this->messages[$key]->seq;
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromArray(array $body): self
    {
        $messages = [];
        foreach (Read::array($body, 'messages') as $m) {
            if (!\is_array($m)) {
                throw new \UnexpectedValueException('response member messages is malformed');
            }
            $messages[] = Message::fromArray($m);
        }
        return new self(Read::string($body, 'channel'), Read::int($body, 'seq'), Read::string($body, 'epoch'), Read::bool($body, 'complete'), $messages);
    }
}
