<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/**
 * The delivery receipt of an inbox message published with `receipt: true` (Client::receipt()): pending (kept,
 * no connection has had it yet), delivered (to `delivered` connections), or acknowledged (by a client of the
 * user, which removed it from the inbox on every device). Times are ms since the epoch.
 */
final class Receipt
{
    public const PENDING = 'pending';
    public const DELIVERED = 'delivered';
    public const ACKNOWLEDGED = 'acknowledged';

    public function __construct(
        public readonly string $messageId,
        public readonly string $userId,
        /** One of PENDING, DELIVERED, ACKNOWLEDGED. */
        public readonly string $status,
        public readonly int $created,
        public readonly int $expires,
        /** Connections it was handed to (live or at their connect), every node together. */
        public readonly int $delivered,
        public readonly ?int $deliveredAt,
        public readonly ?int $acknowledgedAt,
        /** The connection (client id) that acknowledged it. */
        public readonly ?string $acknowledgedBy,
    ) {
    }

    /**
     * @internal
     * @param array<mixed> $r
     */
    public static function fromArray(array $r): self
    {
        $ack = $r['acknowledged'] ?? null;
        if ($ack !== null && !\is_array($ack)) {
            throw new \UnexpectedValueException('response member acknowledged is malformed');
        }
        return new self(
            Read::string($r, 'id'),
            Read::string($r, 'user'),
            Read::string($r, 'status'),
            Read::int($r, 'created'),
            Read::int($r, 'expires'),
            Read::int($r, 'delivered'),
            isset($r['deliveredAt']) ? Read::int($r, 'deliveredAt') : null,
            $ack === null ? null : Read::int($ack, 'at'),
            $ack === null ? null : Read::string($ack, 'client'),
        );
    }
}
