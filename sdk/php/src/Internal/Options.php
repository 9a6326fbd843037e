<?php

declare(strict_types=1);

namespace Herald\Internal;

/**
 * Builds the typed option objects (ClientOptions, RedisPublisherOptions, PageConfig) from the untyped arrays
 * earlier versions took, which stay accepted but deprecated.
 *
 * @internal
 */
final class Options
{
    /**
     * `new $class(...$options)`, with an unknown key or a value of the wrong type reported as an
     * \InvalidArgumentException (PHP would throw an \Error or a \TypeError).
     *
     * @template T of object
     * @param class-string<T> $class
     * @param array<mixed> $options
     * @return T
     */
    public static function fromArray(string $class, array $options): object
    {
        $constructor = (new \ReflectionClass($class))->getConstructor();
        $known = [];
        foreach ($constructor?->getParameters() ?? [] as $parameter) {
            $known[] = $parameter->getName();
        }
        $unknown = array_diff(array_map('strval', array_keys($options)), $known);
        if ($unknown !== [] || array_is_list($options) && $options !== []) {
            throw new \InvalidArgumentException(sprintf(
                'unknown %s option(s): %s; known: %s',
                $class,
                implode(', ', $unknown !== [] ? $unknown : array_keys($options)),
                implode(', ', $known),
            ));
        }
        try {
            return new $class(...$options);
        } catch (\TypeError $e) {
            throw new \InvalidArgumentException("invalid $class option: " . $e->getMessage(), 0, $e);
        }
    }

    /**
     * Reports the use of a deprecated form the way PHP libraries do (as Symfony's trigger_deprecation()):
     * an E_USER_DEPRECATED notice, silenced, so that it reaches error handlers that collect deprecations
     * (and logs with `E_ALL`) without being displayed or turned into an exception.
     */
    public static function deprecated(string $message): void
    {
        @trigger_error('herald-php: ' . $message, E_USER_DEPRECATED);
    }
}
