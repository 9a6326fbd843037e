<?php

declare(strict_types=1);

/*
 * Notifies a user even if they are offline: the message is kept in the user's inbox until one of their
 * clients acknowledges it (the browser SDK does after your handler ran), and any client of the user that
 * connects (a new device, after a week) gets it first:
 *
 *     HERALD_URL=http://127.0.0.1:8080 HERALD_API_KEY=... php examples/php/notify-offline.php 42 "Your export is ready"
 *
 * Prints the message id and whether it was also delivered at once. Asks for a delivery receipt: the
 * gateway's message.acked webhook, or Herald\Client::receipt($id), say when it was acknowledged.
 * Exit code: 0 kept, 1 failed, 2 wrong usage.
 */

require __DIR__ . '/../../sdk/php/src/autoload.php';

use Herald\Client;
use Herald\Exception\HeraldException;

if ($argc !== 3) {
    fwrite(STDERR, "usage: php notify-offline.php <user id> <text>\n");
    exit(2);
}
[, $userId, $text] = $argv;

$apiKey = getenv('HERALD_API_KEY');
if (!is_string($apiKey) || $apiKey === '') {
    fwrite(STDERR, "set HERALD_API_KEY to one of the gateway's API keys\n");
    exit(2);
}

try {
    $herald = new Client(getenv('HERALD_URL') ?: 'http://127.0.0.1:8080', $apiKey);
    // Kept for a week unless acknowledged sooner.
    $result = $herald->publishToUser($userId, 'notice', ['text' => $text], inbox: true, ttl: 7 * 86400, receipt: true);
} catch (HeraldException $e) {
    fwrite(STDERR, sprintf("push failed: %s [%s]\n", $e->getMessage(), $e->getErrorCode()));
    exit(1);
}

printf(
    "kept for user %s until acknowledged (message %s)%s\n",
    $userId,
    (string) $result->messageId,
    $result->live ? '; delivered now too' : '; delivered when they connect',
);
