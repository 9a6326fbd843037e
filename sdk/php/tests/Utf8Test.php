<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Tests\Support\GatewayTestCase;

/** Text survives the trip PHP -> gateway -> WebSocket client, byte for byte. */
final class Utf8Test extends GatewayTestCase
{
    public function testEmojiAndCjkArriveIntact(): void
    {
        $ch = $this->name('utf8');
        $ws = $this->connect(null, [$ch]);
        $text = "Grüße 👋🏽 👨‍👩‍👧 中文 日本語 한국어 Ελληνικά עברית \u{0000}\t\n\"quoted\" \\ / </script>";

        $this->client()->publish($ch, 'text', ['text' => $text, '键' => '值', 'nested' => ['🎉' => ['ok']]]);

        $m = $ws->waitMessage($ch);
        self::assertSame($text, $m['payload']['text']);
        self::assertSame('值', $m['payload']['键']);
        self::assertSame(['ok'], $m['payload']['nested']['🎉']);
        // What history returns to PHP is the same again.
        self::assertSame($text, $this->client()->history($ch)->messages[0]->payload['text']);
    }

    public function testEmojiArriveUnescapedOnTheWire(): void
    {
        $ch = $this->name('raw');
        $ws = $this->connect(null, [$ch]);
        $this->client()->publish($ch, 'text', ['t' => '😀中']);
        self::assertStringContainsString('"payload":{"t":"😀中"}', $ws->waitMessageRaw($ch));
    }

    public function testInvalidUtf8IsReplacedWithTheReplacementCharacterInsteadOfFailing(): void
    {
        $ch = $this->name('invalid');
        $ws = $this->connect(null, [$ch]);
        $user = $this->name('u');
        $tab = $this->connect($user);

        // The bytes of docs/protocol.md's example (61 FF FE 20 F0 9F 98 80), a truncated CJK character,
        // a truncated emoji and an overlong encoding; also in a key, and through publishToUser().
        $this->client()->publish($ch, 'text', ['t' => "a\xFF\xFE \xF0\x9F\x98\x80", 'cut' => "x\xE4\xB8y\xF0\x9F\x98z\xC0\xAF", "k\xFF" => 'v']);
        $this->client()->publishToUser($user, 'text', ['t' => "bad \xC3\x28 byte"]);

        $m = $ws->waitMessage($ch);
        self::assertSame("a\u{FFFD}\u{FFFD} 😀", $m['payload']['t']);
        self::assertSame("x\u{FFFD}y\u{FFFD}z\u{FFFD}\u{FFFD}", $m['payload']['cut']);
        self::assertSame('v', $m['payload']["k\u{FFFD}"]);
        self::assertSame("bad \u{FFFD}( byte", $tab->waitMessage("user:$user")['payload']['t']);
    }
}
