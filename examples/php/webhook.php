<?php

declare(strict_types=1);

/*
 * A webhook receiver for Herald's lifecycle events, with PHP's built-in server:
 *
 *     HERALD_WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:8001 examples/php/webhook.php
 *
 * and the gateway started with HERALD_WEBHOOK_URL=http://127.0.0.1:8001/ and the same HERALD_WEBHOOK_SECRET.
 * Every request is verified with Herald\Webhook::verify() (Standard Webhooks signatures); a forged, altered or
 * stale one is refused with 401. user.online and user.offline are logged, one line each, to
 * HERALD_WEBHOOK_LOG (default: the server's stderr); other events are accepted and ignored.
 *
 * Herald retries a delivery until it gets a 2xx, so the same event may come twice: the webhook-id header
 * identifies it (a real app records the ids it handled and skips repeats).
 */

require __DIR__ . '/../../sdk/php/src/autoload.php';

use Herald\Exception\WebhookVerificationFailed;
use Herald\Webhook;

$secret = getenv('HERALD_WEBHOOK_SECRET');
$log = getenv('HERALD_WEBHOOK_LOG') ?: 'php://stderr';
if (!is_string($secret) || $secret === '') {
    http_response_code(500);
    error_log('set HERALD_WEBHOOK_SECRET to the secret the gateway signs with');
    exit;
}

try {
    // The raw body, exactly as received: re-encoded JSON would not match the signature.
    $event = Webhook::verify((string) file_get_contents('php://input'), $_SERVER, $secret);
} catch (WebhookVerificationFailed $e) {
    http_response_code(401);
    file_put_contents($log, sprintf("refused: %s [%s]\n", $e->getMessage(), $e->getErrorCode()), FILE_APPEND);
    exit;
}

$type = $event['type'] ?? '';
$data = \is_array($event['data'] ?? null) ? $event['data'] : [];
if ($type === 'user.online' || $type === 'user.offline') {
    $line = sprintf("%s user %s %s\n", $event['timestamp'] ?? '', (string) ($data['user'] ?? '?'), $type === 'user.online' ? 'online' : 'offline');
    file_put_contents($log, $line, FILE_APPEND);
}
http_response_code(204);
