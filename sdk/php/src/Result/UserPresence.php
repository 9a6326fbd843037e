<?php

declare(strict_types=1);

namespace Herald\Result;

/** Whether one user is online, and with how many connections (tabs, devices), cluster-wide. */
final class UserPresence
{
    public function __construct(
        public readonly string $userId,
        public readonly bool $online,
        public readonly int $connections,
    ) {
    }
}
