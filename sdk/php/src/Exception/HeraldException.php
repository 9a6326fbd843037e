<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * Base class of every error the SDK reports about a call to the gateway (or to Redis), or about a webhook
 * it verified: catch it to handle them all. It carries the stable error code (match on it, not on the
 * message), the HTTP status, the offending request field and the request id to quote when reporting a
 * problem. docs/errors.md (section "PHP SDK") lists every subclass and code.
 *
 * Programming errors (a scalar payload, an invalid option) are \InvalidArgumentException instead, thrown
 * before anything is sent.
 */
class HeraldException extends \RuntimeException
{
    /**
     * @param string $errorCode The gateway's error code (`invalid_channel`, `unauthorized`, ...) or one of the SDK's own
     *                          (`transport_error`, `timeout`, `invalid_response`, ...): all in docs/errors.md.
     * @param int $status HTTP status of the response; 0 when no response arrived (TransportError) or for Redis.
     * @param string|null $field The request field the gateway names as the problem (`payload`, `[1].type`, ...).
     * @param string|null $requestId The request's `X-Request-Id`, as logged by the gateway.
     * @param array<string, mixed> $details The whole `error` object of the response body (extra members such as `limit`).
     */
    public function __construct(
        string $message,
        private readonly string $errorCode,
        private readonly int $status = 0,
        private readonly ?string $field = null,
        private readonly ?string $requestId = null,
        private readonly array $details = [],
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, $status, $previous);
    }

    /** The gateway's stable error code, e.g. `no_such_client`; see docs/errors.md. */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    /** The HTTP status, or 0 when there was no HTTP response. */
    public function getStatus(): int
    {
        return $this->status;
    }

    /** The offending request field (`channel`, `payload`, `[2].type`, `users`, ...), when the gateway named one. */
    public function getField(): ?string
    {
        return $this->field;
    }

    /** The request id (`X-Request-Id`) the gateway logged this request under. */
    public function getRequestId(): ?string
    {
        return $this->requestId;
    }

    /**
     * The `error` object of the response, e.g. `['code' => 'body_too_large', 'message' => '...', 'limit' => 1048576]`.
     *
     * @return array<string, mixed>
     */
    public function getDetails(): array
    {
        return $this->details;
    }
}
