<?php

declare(strict_types=1);

namespace Herald\Internal;

/**
 * URLs as messages may show them.
 *
 * @internal
 */
final class Url
{
    /**
     * `$url` without its user info (`http://***@host/...`): a password (a proxy's, Redis') never goes into an
     * exception message or a log. Also for strings that are not quite URLs (`redis//:secret@host`).
     */
    public static function redact(string $url): string
    {
        $at = strrpos($url, '@');
        if ($at === false) {
            return $url;
        }
        $slashes = strpos($url, '//');
        $from = $slashes === false || $slashes > $at ? 0 : $slashes + 2;
        return substr($url, 0, $from) . '***' . substr($url, $at);
    }
}
