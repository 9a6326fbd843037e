<?php

declare(strict_types=1);

/*
 * Pushes a notice to one user, through the gateway's HTTP API:
 *
 *     HERALD_URL=http://127.0.0.1:8080 HERALD_API_KEY=... php examples/php/notify.php 42 "hello"
 *
 * Every browser tab of user 42 connected with a token for "42" receives
 *     {"type":"notice","channel":"user:42","payload":{"text":"hello"},"seq":N}
 * and this script prints whether user 42 was online. Exit code: 0 pushed (online or not), 1 failed,
 * 2 wrong usage.
 */

// Without Composer: the SDK's own autoloader. With Composer: require 'vendor/autoload.php'.
require __DIR__ . '/../../sdk/php/src/autoload.php';

use Herald\Client;
use Herald\Exception\HeraldException;

if ($argc !== 3) {
    fwrite(STDERR, "usage: php notify.php <user id> <text>\n");
    exit(2);
}
[, $userId, $text] = $argv;

$url = getenv('HERALD_URL') ?: 'http://127.0.0.1:8080';
$apiKey = getenv('HERALD_API_KEY');
if (!is_string($apiKey) || $apiKey === '') {
    fwrite(STDERR, "set HERALD_API_KEY to one of the gateway's API keys\n");
    exit(2);
}

try {
    $herald = new Client($url, $apiKey);
    $result = $herald->publishToUser($userId, 'notice', ['text' => $text]);
} catch (HeraldException $e) {
    // getErrorCode() is stable (see docs/errors.md); the message is for people.
    fwrite(STDERR, sprintf("push failed: %s [%s]\n", $e->getMessage(), $e->getErrorCode()));
    exit(1);
} catch (InvalidArgumentException $e) {
    fwrite(STDERR, 'push failed: ' . $e->getMessage() . "\n");
    exit(2);
}

if ($result->online) {
    printf("user %s is online: delivered to %d connection(s) (seq %d)\n", $userId, $result->subscribers, $result->seq);
} else {
    printf("user %s is offline: nothing delivered now; kept in history (seq %d) for a reconnect\n", $userId, $result->seq);
}
