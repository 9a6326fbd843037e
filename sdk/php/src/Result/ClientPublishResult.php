<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/**
 * The answer to a publish to one connection. Client::publishToClient() only returns it when the message
 * was delivered (it throws ClientNotFound otherwise); in a Client::publishMany() batch, an item whose
 * connection is gone is reported here with `delivered === false` and `errorCode === 'no_such_client'`.
 */
final class ClientPublishResult
{
    public function __construct(
        /** The idempotency id, if the publish had one. */
        public readonly ?string $id,
        /** The connection's client id. */
        public readonly string $clientId,
        /** Whether the connection received the message. */
        public readonly bool $delivered,
        /** Why it was not delivered (`no_such_client`), in a publishMany() batch. */
        public readonly ?string $errorCode = null,
        /** The gateway's message for $errorCode. */
        public readonly ?string $errorMessage = null,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromArray(array $body, string $clientId): self
    {
        $error = isset($body['error']) && \is_array($body['error']) ? $body['error'] : null;
        return new self(
            Read::optionalString($body, 'id'),
            isset($body['client']) && \is_string($body['client']) ? $body['client'] : $clientId,
            Read::bool($body, 'delivered'),
            $error !== null ? Read::optionalString($error, 'code') : null,
            $error !== null ? Read::optionalString($error, 'message') : null,
        );
    }
}
