<?php

declare(strict_types=1);

namespace Herald;

use Herald\Internal\Options;

/**
 * Hands a token (and the gateway URL) to the browser safely.
 *
 *     <?= Herald\Page::script(new Herald\PageConfig(url: 'wss://push.example.com/ws', token: $jwt)) ?>
 *     <script src="/js/herald.min.js"></script>
 *     <script>
 *       const client = Herald.createClient(window.HERALD);
 *       client.on('message', (m) => console.log(m.type, m.payload));
 *       client.connect();
 *     </script>
 */
final class Page
{
    /**
     * JSON flags that make the text safe inside a `<script>` element: `<`, `>`, `&`, `'` and `"` inside
     * strings are \u-escaped, so nothing can close the element or start a comment.
     */
    public const SCRIPT_JSON_FLAGS = JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT
        | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR;

    /**
     * `<script>window.HERALD = {...};</script>`: the config as a global for the page's code.
     *
     * @param PageConfig|array<string, mixed> $config The options of the browser SDK's createClient() (and
     *        values of your own in its `extra`). An array (`['url' => $wsUrl, 'token' => $jwt]`) is still
     *        accepted but deprecated.
     * @param string $global The global variable name (a JavaScript identifier).
     * @param string|null $nonce A Content-Security-Policy nonce for the element.
     * @throws \InvalidArgumentException for a global that is not a JavaScript identifier, or a config JSON cannot hold.
     */
    public static function script(PageConfig|array $config, string $global = 'HERALD', ?string $nonce = null): string
    {
        if (\is_array($config)) {
            Options::deprecated('passing an array to Herald\Page::script() is deprecated: pass a Herald\PageConfig');
        }
        if (preg_match('/^[A-Za-z_$][A-Za-z0-9_$]*$/D', $global) !== 1) {
            throw new \InvalidArgumentException("'$global' is not a JavaScript identifier");
        }
        $attr = $nonce === null ? '' : ' nonce="' . htmlspecialchars($nonce, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8') . '"';
        return "<script$attr>window.$global = " . self::json($config) . ";</script>";
    }

    /**
     * JSON that is safe to print inside a `<script>` element (an empty array is `{}`). For an HTML
     * attribute, escape it once more: `htmlspecialchars(Page::json($config))`.
     *
     * @param array<mixed>|object $value
     * @throws \InvalidArgumentException for a value JSON cannot hold (NAN, INF, a recursive structure).
     */
    public static function json(array|object $value): string
    {
        try {
            return json_encode($value === [] ? new \stdClass() : $value, self::SCRIPT_JSON_FLAGS);
        } catch (\JsonException $e) {
            throw new \InvalidArgumentException('cannot encode the page config as JSON: ' . $e->getMessage(), 0, $e);
        }
    }
}
