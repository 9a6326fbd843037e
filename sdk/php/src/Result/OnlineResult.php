<?php

declare(strict_types=1);

namespace Herald\Result;

use Herald\Internal\Read;

/** The answer to Client::online(): presence per requested user. */
final class OnlineResult
{
    /**
     * @param array<string, UserPresence> $users Keyed by user id. PHP turns a numeric key such as "42" into
     *                                          the int 42; isOnline() and connections() accept both.
     */
    public function __construct(public readonly array $users)
    {
    }

    /** Whether the user has at least one connection; false for a user that was not asked about. */
    public function isOnline(string|int $userId): bool
    {
        return $this->users[(string) $userId]->online ?? false;
    }

    /** The user's connection count (0 when offline or not asked about). */
    public function connections(string|int $userId): int
    {
        return $this->users[(string) $userId]->connections ?? 0;
    }

    /** @return list<string> The ids of the users that are online. */
    public function onlineUserIds(): array
    {
        $ids = [];
        foreach ($this->users as $u) {
            if ($u->online) {
                $ids[] = $u->userId;
            }
        }
        return $ids;
    }

    /**
     * @internal
     * @param array<mixed> $body
     */
    public static function fromArray(array $body): self
    {
        $users = [];
        foreach (Read::array($body, 'users') as $id => $u) {
            if (!\is_array($u)) {
                throw new \UnexpectedValueException('response member users is malformed');
            }
            // json_decode turns the key "42" into the integer 42: ids are strings.
            $id = (string) $id;
            $users[$id] = new UserPresence($id, Read::bool($u, 'online'), Read::int($u, 'connections'));
        }
        return new self($users);
    }
}
