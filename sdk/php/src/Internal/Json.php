<?php

declare(strict_types=1);

namespace Herald\Internal;

/**
 * JSON encoding and decoding as the SDK does it everywhere.
 *
 * @internal
 */
final class Json
{
    /**
     * Flags for everything sent to the gateway or to Redis: UTF-8 text as is (emoji and CJK unescaped,
     * `/` unescaped), invalid UTF-8 bytes replaced with U+FFFD (as the gateway does for raw bodies) instead
     * of failing the whole publish, and an exception (never `false`) on what cannot be encoded (NAN, INF,
     * recursion). Floats follow PHP's shortest round-trip form, like JavaScript (`1.0` is sent as `1`).
     */
    public const ENCODE_FLAGS = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR;

    /** @param mixed $value */
    public static function encode($value): string
    {
        try {
            return json_encode($value, self::ENCODE_FLAGS, 512);
        } catch (\JsonException $e) {
            throw new \InvalidArgumentException('cannot encode the value as JSON: ' . $e->getMessage(), 0, $e);
        }
    }

    /**
     * Checks and normalizes a message payload: an array or an object (a stdClass, a JsonSerializable, any
     * object with public properties), never a scalar. A top-level empty array `[]` becomes `{}`: PHP cannot
     * tell an empty list from an empty map, and a message payload is almost always an object. Nested empty
     * arrays are left alone (`['items' => []]` sends `{"items":[]}`); use `new \stdClass()` for a nested `{}`.
     *
     * @param mixed $payload
     * @return array<mixed>|object
     */
    public static function payload($payload, string $what = 'payload')
    {
        if (\is_array($payload)) {
            return $payload === [] ? new \stdClass() : $payload;
        }
        if (\is_object($payload)) {
            if ($payload instanceof \JsonSerializable) {
                $inner = $payload->jsonSerialize();
                if (!\is_array($inner) && !\is_object($inner)) {
                    throw new \InvalidArgumentException(sprintf(
                        '%s must serialize to a JSON object or array, %s::jsonSerialize() returned %s',
                        $what,
                        $payload::class,
                        get_debug_type($inner),
                    ));
                }
                return self::payload($inner, $what);
            }
            return $payload;
        }
        throw new \InvalidArgumentException(
            sprintf('%s must be an array or an object (it is delivered as a JSON object or array), %s given', $what, get_debug_type($payload)),
        );
    }

    /**
     * Decodes a JSON object or array into PHP arrays (big integers kept as strings).
     *
     * @return array<mixed>
     * @throws \JsonException
     */
    public static function decode(string $json): array
    {
        $value = json_decode($json, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        if (!\is_array($value)) {
            throw new \JsonException('expected a JSON object or array');
        }
        return $value;
    }
}
