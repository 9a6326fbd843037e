<?php

declare(strict_types=1);

namespace Herald\Internal;

/**
 * Typed reads from decoded response bodies: a member of the wrong type is an \UnexpectedValueException,
 * which the Client reports as a HeraldException with code `invalid_response` (never a half-filled result).
 *
 * @internal
 */
final class Read
{
    /** @param array<mixed> $a */
    public static function int(array $a, string $key): int
    {
        $v = $a[$key] ?? null;
        if (!\is_int($v)) {
            throw new \UnexpectedValueException("response member $key is not an integer");
        }
        return $v;
    }

    /** @param array<mixed> $a */
    public static function string(array $a, string $key): string
    {
        $v = $a[$key] ?? null;
        if (!\is_string($v)) {
            throw new \UnexpectedValueException("response member $key is not a string");
        }
        return $v;
    }

    /** @param array<mixed> $a */
    public static function optionalString(array $a, string $key): ?string
    {
        return isset($a[$key]) ? self::string($a, $key) : null;
    }

    /** @param array<mixed> $a */
    public static function bool(array $a, string $key): bool
    {
        $v = $a[$key] ?? null;
        if (!\is_bool($v)) {
            throw new \UnexpectedValueException("response member $key is not a boolean");
        }
        return $v;
    }

    /**
     * @param array<mixed> $a
     * @return array<mixed>
     */
    public static function array(array $a, string $key): array
    {
        $v = $a[$key] ?? null;
        if (!\is_array($v)) {
            throw new \UnexpectedValueException("response member $key is not an object or array");
        }
        return $v;
    }
}
