<?php

declare(strict_types=1);

namespace Herald\Internal;

/**
 * The idempotency id argument of the publish methods: a string, or null for none. The `['id' => ...]` array
 * of earlier versions is still accepted, and deprecated.
 *
 * @internal
 */
final class PublishId
{
    /**
     * @param string|array<mixed>|null $id
     * @throws \InvalidArgumentException for an empty id or one that is not valid UTF-8, or an array with another key than `id`.
     */
    public static function from(string|array|null $id): ?string
    {
        if (\is_array($id)) {
            $unknown = array_diff(array_map('strval', array_keys($id)), ['id']);
            if ($unknown !== []) {
                throw new \InvalidArgumentException('unknown publish option(s): ' . implode(', ', $unknown) . '; known: id');
            }
            if ($id !== []) {
                Options::deprecated("passing ['id' => ...] to a publish method is deprecated: pass the id itself (id: 'evt-1')");
            }
            $id = $id['id'] ?? null;
            if ($id !== null && !\is_string($id)) {
                throw new \InvalidArgumentException('the publish id must be a non-empty string');
            }
        }
        if ($id === '') {
            throw new \InvalidArgumentException('the publish id must be a non-empty string');
        }
        // Over HTTP invalid bytes would become U+FFFD (so "a\xFF" and "a\xFE" would be one id) and over Redis
        // stay bytes (two ids): an id is text, the same one whichever way it goes.
        if ($id !== null && preg_match('//u', $id) !== 1) {
            throw new \InvalidArgumentException('the publish id must be valid UTF-8');
        }
        return $id;
    }
}
