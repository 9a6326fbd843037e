<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * HTTP 504 `engine_timeout`: the gateway sent the command to its engine (Redis) and got no answer in time,
 * so nobody knows whether the message was published. Unlike its parent ServiceUnavailable (nothing was
 * accepted), the publish may have happened: retry it only with the same idempotency id, which makes a
 * repeat harmless (the gateway answers `duplicate: true` if the first attempt went through).
 *
 * The Client already retried the call with the same id (its `retries` option); this is what is left when
 * the retries ran out, or when an earlier attempt timed out this way and a later one failed otherwise.
 * getPublishId() is the id to retry with later; it is null when the publish had none (retries off and no
 * id given): such a publish cannot be retried safely, so pass an id.
 */
final class OutcomeUnknown extends ServiceUnavailable
{
    /**
     * @param list<string|null> $publishIds The idempotency id of each message of the call, in order (one for
     *                                      publish(), one per message for publishMany()); empty for calls
     *                                      that publish nothing.
     */
    public function __construct(
        string $message,
        string $errorCode = 'engine_timeout',
        int $status = 504,
        ?string $field = null,
        ?string $requestId = null,
        array $details = [],
        ?\Throwable $previous = null,
        private readonly array $publishIds = [],
    ) {
        parent::__construct($message, $errorCode, $status, $field, $requestId, $details, $previous);
    }

    /** The idempotency id to publish again with, for a call that published one message; null otherwise. */
    public function getPublishId(): ?string
    {
        return \count($this->publishIds) === 1 ? $this->publishIds[0] : null;
    }

    /**
     * The idempotency id of each message of the call, in order (publishMany(): one per message).
     *
     * @return list<string|null>
     */
    public function getPublishIds(): array
    {
        return $this->publishIds;
    }
}
