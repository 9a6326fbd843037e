<?php

declare(strict_types=1);

/*
 * A tiny PHP app that pushes to the browser through Herald.
 *
 *     HERALD_URL=http://127.0.0.1:8080 HERALD_API_KEY=... HERALD_JWT_SECRET=... \
 *         php -S 127.0.0.1:8000 examples/php/app/index.php
 *
 * then open http://127.0.0.1:8000/?user=42. The page gets a connection token for user 42, connects to the
 * gateway's /ws with the browser SDK, and shows every message pushed to user 42. Its form posts to this
 * app, which pushes to a user through the HTTP API (Herald\Client) or straight into the gateway's Redis
 * (Herald\RedisPublisher; needs a Redis-engine gateway, HERALD_REDIS_URL and phpredis).
 *
 * Routes: GET /           the page                     GET /token   a fresh token (for reconnects)
 *         GET /herald.min.js  the browser SDK          POST /push   push {to, text, via: http|redis}
 *
 * WARNING: the user comes from the query string so that you can open two users side by side. A real app
 * takes it from its session: whoever gets a token for user 42 receives user 42's messages.
 */

require __DIR__ . '/../../../sdk/php/src/autoload.php';

use Herald\Client;
use Herald\ClientOptions;
use Herald\Exception\HeraldException;
use Herald\Exception\ValidationFailed;
use Herald\Page;
use Herald\PageConfig;
use Herald\RedisPublisher;
use Herald\RedisPublisherOptions;
use Herald\Token;

$gatewayUrl = rtrim(getenv('HERALD_URL') ?: 'http://127.0.0.1:8080', '/');
// The page connects to the gateway's WebSocket endpoint (its default path is /ws).
$wsUrl = preg_replace('~^http~', 'ws', $gatewayUrl) . '/ws';
// The browser SDK: this repository's build, served by this app; else the gateway's copy (demo mode).
$sdkFile = __DIR__ . '/../../../packages/client/dist/herald.min.js';

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$user = (string) ($_GET['user'] ?? '42');

/** A JSON response. */
function json_response(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json; charset=utf-8');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
}

function env_required(string $name): string
{
    $v = getenv($name);
    if (!is_string($v) || $v === '') {
        throw new InvalidArgumentException("$name is not set");
    }
    return $v;
}

function herald(string $gatewayUrl): Client
{
    static $client = null;
    return $client ??= new Client($gatewayUrl, env_required('HERALD_API_KEY'), new ClientOptions(timeout: 3.0));
}

function redis_publisher(): RedisPublisher
{
    static $publisher = null;
    return $publisher ??= RedisPublisher::fromUrl(
        getenv('HERALD_REDIS_URL') ?: 'redis://127.0.0.1:6379',
        new RedisPublisherOptions(prefix: getenv('HERALD_REDIS_PREFIX') ?: 'herald'),
    );
}

switch ($path) {
    case '/herald.min.js':
        if (!is_file($sdkFile)) {
            header('Location: ' . $gatewayUrl . '/herald.min.js');
            http_response_code(302);
            return;
        }
        header('Content-Type: text/javascript; charset=utf-8');
        header('Cache-Control: no-cache');
        readfile($sdkFile);
        return;

    case '/token':
        // The browser SDK asks for a new token when the old one expired (close code 4401).
        header('Content-Type: text/plain; charset=utf-8');
        header('Cache-Control: no-store');
        try {
            echo Token::forUser($user, ttl: 3600, secret: env_required('HERALD_JWT_SECRET'));
        } catch (InvalidArgumentException $e) {
            http_response_code(400);
            echo $e->getMessage(), "\n";
        }
        return;

    case '/push':
        if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'POST') {
            json_response(405, ['ok' => false, 'error' => 'POST only']);
            return;
        }
        $to = trim((string) ($_POST['to'] ?? $user));
        $via = (string) ($_POST['via'] ?? 'http');
        $payload = ['text' => (string) ($_POST['text'] ?? ''), 'via' => $via, 'at' => date(DATE_ATOM)];
        try {
            $result = $via === 'redis'
                ? redis_publisher()->publishToUser($to, 'notice', $payload)
                : herald($gatewayUrl)->publishToUser($to, 'notice', $payload);
            json_response(200, [
                'ok' => true,
                'via' => $via,
                'user' => $to,
                'online' => $result->online,
                'seq' => $result->seq,
                'connections' => $result->subscribers,
            ]);
        } catch (HeraldException $e) {
            // An invalid user id is the form's fault; anything else is the gateway's (or Redis's).
            json_response($e instanceof ValidationFailed ? 400 : 502, ['ok' => false, 'error' => $e->getErrorCode(), 'message' => $e->getMessage()]);
        } catch (InvalidArgumentException | LogicException $e) {
            json_response(400, ['ok' => false, 'error' => 'invalid', 'message' => $e->getMessage()]);
        }
        return;

    case '/':
    case '/index.php':
        break;

    default:
        http_response_code(404);
        header('Content-Type: text/plain; charset=utf-8');
        echo "not found\n";
        return;
}

try {
    $token = Token::forUser($user, ttl: 3600, secret: env_required('HERALD_JWT_SECRET'));
} catch (InvalidArgumentException $e) {
    http_response_code(400);
    header('Content-Type: text/plain; charset=utf-8');
    echo 'cannot issue a token: ', $e->getMessage(), "\n";
    return;
}
$h = static fn (string $s): string => htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Herald from PHP: user <?= $h($user) ?></title>
  <style>
    body { font: 15px/1.4 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
    #state { padding: .1rem .5rem; border-radius: .3rem; background: #eee; }
    #state[data-state="connected"] { background: #c8f7c5; }
    #messages li { margin: .3rem 0; }
    #messages .via { color: #666; font-size: .85em; }
    form { display: flex; gap: .5rem; flex-wrap: wrap; margin: 1rem 0; }
    output { display: block; min-height: 1.4em; color: #333; }
  </style>
</head>
<body>
  <h1>Signed in as user <?= $h($user) ?></h1>
  <p>Connection: <span id="state" data-state="disconnected">disconnected</span></p>

  <form id="push" method="post" action="/push">
    <label>To user <input name="to" value="<?= $h($user) ?>" size="8"></label>
    <input name="text" value="Hello from PHP" aria-label="text">
    <button name="via" value="http">Push via HTTP API</button>
    <button name="via" value="redis">Push via Redis</button>
  </form>
  <output id="result"></output>

  <h2>Messages for user <?= $h($user) ?></h2>
  <ul id="messages"></ul>

  <?= Page::script(new PageConfig(url: $wsUrl, token: $token, extra: ['user' => $user])) . "\n" ?>
  <script src="/herald.min.js"></script>
  <script>
    const cfg = window.HERALD;
    const stateEl = document.getElementById('state');
    const list = document.getElementById('messages');
    const result = document.getElementById('result');

    const client = Herald.createClient({
      url: cfg.url,
      token: cfg.token,
      // A fresh token when this one expires (close 4401).
      getToken: () => fetch('/token?user=' + encodeURIComponent(cfg.user)).then((r) => {
        if (!r.ok) throw new Error('token request failed: ' + r.status);
        return r.text();
      }),
    });
    client.on('state', ({ to }) => {
      stateEl.textContent = to;
      stateEl.dataset.state = to;
    });
    // user:<id> is subscribed automatically: every message pushed to this user arrives here.
    client.on('message', (m) => {
      const li = document.createElement('li');
      li.dataset.seq = String(m.seq);
      li.dataset.via = String(m.payload.via ?? '');
      li.textContent = String(m.payload.text ?? JSON.stringify(m.payload)) + ' ';
      const via = document.createElement('span');
      via.className = 'via';
      via.textContent = `(${m.type} #${m.seq} on ${m.channel}, via ${m.payload.via ?? '?'})`;
      li.append(via);
      list.append(li);
    });
    client.on('error', (err) => console.warn('herald:', err.code, err.message));
    client.connect();

    // Post the form without leaving the page (the connection stays up).
    document.getElementById('push').addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = new FormData(e.target);
      body.set('via', e.submitter ? e.submitter.value : 'http');
      const r = await fetch('/push', { method: 'POST', body, headers: { Accept: 'application/json' } });
      const out = await r.json();
      result.dataset.online = String(out.online);
      result.dataset.ok = String(out.ok);
      result.textContent = out.ok
        ? `Pushed to user ${out.user} via ${out.via}: seq ${out.seq}, online: ${out.online} (${out.connections} connection(s))`
        : `Push failed: ${out.error}: ${out.message}`;
    });
  </script>
</body>
</html>
