<?php

declare(strict_types=1);

/*
 * A publish hook for a chat, with PHP's built-in server: the gateway asks it about every message a browser
 * publishes (client.publish) before the message goes out.
 *
 *     HERALD_PUBLISH_HOOK_SECRET=whsec_... php -S 127.0.0.1:8002 examples/php/publish-hook.php
 *
 * and the gateway started with HERALD_PUBLISH_HOOK_URL=http://127.0.0.1:8002/ and the same secret. Each request
 * is verified with Herald\Webhook::verify() (the hook's requests are signed like webhooks); a forged one gets
 * 401, which the gateway counts as a failed hook (the publish is denied). The answer decides:
 *
 * - a message with a link is rejected, and the browser's publish() fails with the reason below;
 * - "darn" is masked and the sender's name from its token's info claim is added (a rewrite);
 * - everything else is accepted as sent (204).
 *
 * A real app would also store the message here (its chat history), or take it from the client.publish webhook.
 * The gateway waits for this answer (2 s at most by default), so keep it fast.
 */

require __DIR__ . '/../../sdk/php/src/autoload.php';

use Herald\Exception\WebhookVerificationFailed;
use Herald\Webhook;

$secret = getenv('HERALD_PUBLISH_HOOK_SECRET') ?: getenv('HERALD_WEBHOOK_SECRET');
if (!is_string($secret) || $secret === '') {
    http_response_code(500);
    error_log('set HERALD_PUBLISH_HOOK_SECRET to the secret the gateway signs with');
    exit;
}

try {
    $publish = Webhook::verify((string) file_get_contents('php://input'), $_SERVER, $secret);
} catch (WebhookVerificationFailed $e) {
    http_response_code(401);
    exit;
}

$payload = \is_array($publish['payload'] ?? null) ? $publish['payload'] : [];
$text = \is_string($payload['text'] ?? null) ? $payload['text'] : '';

header('Content-Type: application/json');
if (preg_match('~https?://~i', $text) === 1) {
    echo json_encode(['action' => 'reject', 'reason' => 'Links are not allowed in this chat.']);
    exit;
}
if (stripos($text, 'darn') !== false) {
    $info = \is_array($publish['info'] ?? null) ? $publish['info'] : [];
    $payload['text'] = str_ireplace('darn', '****', $text);
    $payload['name'] = \is_string($info['name'] ?? null) ? $info['name'] : (string) ($publish['user'] ?? '?');
    echo json_encode(['action' => 'rewrite', 'payload' => $payload], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    exit;
}
header_remove('Content-Type');
http_response_code(204);
