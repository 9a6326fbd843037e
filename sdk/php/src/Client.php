<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\ClientNotFound;
use Herald\Exception\HeraldException;
use Herald\Http\CurlTransport;
use Herald\Http\Transport;
use Herald\Internal\Json;
use Herald\Internal\Options;
use Herald\Internal\PublishId;
use Herald\Internal\Requester;
use Herald\Result\ChannelInfo;
use Herald\Result\ClientPublishResult;
use Herald\Result\HistoryPage;
use Herald\Result\InboxMessage;
use Herald\Result\Receipt;
use Herald\Result\OnlineResult;
use Herald\Result\PublishResult;
use Herald\Result\UserPublishResult;

/**
 * The gateway's HTTP API: publish to channels, users and connections; presence, channel state, history;
 * disconnect. One method per API verb. Every failure is a Herald\Exception\HeraldException subclass
 * (never a PHP warning, never a `false` to check); a scalar payload or an invalid argument is an
 * \InvalidArgumentException thrown before anything is sent.
 *
 *     $herald = new Herald\Client('http://127.0.0.1:8080', getenv('HERALD_API_KEY'));
 *     $result = $herald->publishToUser(42, 'notice', ['text' => 'Your export is ready']);
 *     if (!$result->online) { ... send an e-mail instead ... }
 */
final class Client
{
    /** The SDK version, sent in the User-Agent: Herald\Version::VERSION. */
    public const VERSION = Version::VERSION;

    /**
     * Option defaults, as the keys of the deprecated options array.
     *
     * @deprecated Pass a Herald\ClientOptions; its constructor holds the defaults.
     */
    public const DEFAULTS = [
        'timeout' => 5.0,
        'connectTimeout' => 2.0,
        'retries' => 2,
        'retryDelay' => 100,
        'maxRetryDelay' => 2000,
        'transport' => null,
        'sleep' => null,
    ];

    private readonly Requester $requester;
    private readonly int $retries;

    /**
     * @param string $baseUrl The gateway's HTTP URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept:
     *                        `https://example.com/herald` calls `https://example.com/herald/api/...`).
     * @param string $apiKey One of the gateway's `HERALD_API_KEY` keys.
     * @param ClientOptions|array<string, mixed>|null $options Timeouts, retries, transport; null for the
     *        defaults. An array with the same keys (`['timeout' => 3.0]`) is still accepted but deprecated.
     * @throws \InvalidArgumentException for an invalid URL, an empty key or an unknown or invalid option.
     */
    public function __construct(string $baseUrl, #[\SensitiveParameter] string $apiKey, ClientOptions|array|null $options = null)
    {
        if (\is_array($options)) {
            if ($options !== []) {
                Options::deprecated('passing an array of options to Herald\Client is deprecated: pass a Herald\ClientOptions');
            }
            $options = ClientOptions::fromArray($options);
        }
        $options ??= new ClientOptions();

        $baseUrl = rtrim($baseUrl, '/');
        $scheme = parse_url($baseUrl, PHP_URL_SCHEME);
        if (!\in_array($scheme, ['http', 'https'], true) || parse_url($baseUrl, PHP_URL_HOST) === null) {
            throw new \InvalidArgumentException(
                "the base URL must be an http:// or https:// URL of the gateway, e.g. http://127.0.0.1:8080; got '$baseUrl'",
            );
        }
        if (trim($apiKey) === '') {
            throw new \InvalidArgumentException('the API key is empty: pass one of the gateway\'s HERALD_API_KEY keys');
        }

        $this->retries = $options->retries;
        $this->requester = new Requester(
            $baseUrl,
            $apiKey,
            $options->transport ?? new CurlTransport(),
            $options->timeout,
            $options->connectTimeout,
            $options->retries,
            $options->retryDelay,
            $options->maxRetryDelay,
            $options->sleep ?? static function (int $milliseconds): void {
                usleep($milliseconds * 1000);
            },
        );
    }

    /**
     * Publishes a message to one channel or to several (each gets its own seq).
     *
     * Subscribers receive `{"type": $type, "channel": <channel>, "payload": $payload, "seq": <seq>}`.
     *
     * @param string|list<string> $channels A channel name (`news`, `user:42`, `private:team-7`), or a list of them.
     * @param string $type The message type: 1-100 characters of `[A-Za-z0-9_\-:.]`, not a reserved type.
     * @param array<mixed>|object $payload A JSON object or array (an empty PHP array is sent as `{}`).
     * @param string|null $id Idempotency key (1-200 characters): the same id published again within the
     *                        gateway's window (5 min) publishes nothing. Null: the SDK generates one when
     *                        retries are on. (An `['id' => ...]` array is still accepted, deprecated.)
     * @throws \InvalidArgumentException a scalar payload, an empty channel list, an unknown option.
     * @throws HeraldException ValidationFailed (400), Unauthorized (401), PayloadTooLarge (413),
     *                         ServiceUnavailable (503: nothing was accepted), OutcomeUnknown (504
     *                         `engine_timeout`: maybe published; retry with its getPublishId()),
     *                         TransportError (no answer).
     */
    public function publish(string|array $channels, string $type, array|object $payload, string|array|null $id = null): PublishResult
    {
        $generated = false;
        $body = $this->target($channels) + $this->message($type, $payload, PublishId::from($id), 'payload', $generated);
        [$response, $attempts] = $this->requester->call('POST', '/api/publish', $body, isset($body['id']), [$body['id'] ?? null]);
        return $this->wrap(static fn () => PublishResult::fromArray($response, $generated && $attempts > 1));
    }

    /**
     * Publishes to `user:<id>`: every tab and device of the user. The result says whether the user was
     * online; `online === false` is not an error (the message stays in history for a reconnect).
     *
     * With `inbox: true` the message is kept in the user's inbox until a client of the user acknowledges
     * it (or `$ttl` seconds pass; the gateway's default is 7 days), whether the user is online or not: every
     * client of the user that connects gets it first (`$herald->publishToUser(42, 'notice', [...], inbox: true)`
     * notifies user 42 even if offline). `receipt: true` asks for a delivery receipt (receipt(), and the
     * `message.acked` webhook). The result's `messageId`, `stored` and `live` say what happened.
     *
     * @param array<mixed>|object $payload
     * @param string|array<mixed>|null $id As publish().
     * @param int|null $ttl Inbox only: seconds to keep it (1 to a year); null for the gateway's default.
     * @throws HeraldException as publish()
     */
    public function publishToUser(
        string|int $userId,
        string $type,
        array|object $payload,
        string|array|null $id = null,
        bool $inbox = false,
        ?int $ttl = null,
        bool $receipt = false,
    ): UserPublishResult {
        $userId = (string) $userId;
        if (!$inbox && ($ttl !== null || $receipt)) {
            throw new \InvalidArgumentException('ttl and receipt are for inbox messages: pass inbox: true');
        }
        $generated = false;
        $body = ['channel' => 'user:' . $userId] + $this->message($type, $payload, PublishId::from($id), 'payload', $generated);
        if ($inbox) {
            $body['inbox'] = true;
            if ($ttl !== null) {
                $body['ttl'] = $ttl;
            }
            if ($receipt) {
                $body['receipt'] = true;
            }
        }
        [$response, $attempts] = $this->requester->call('POST', '/api/publish', $body, isset($body['id']), [$body['id'] ?? null]);
        return $this->wrap(static fn () => UserPublishResult::fromUserArray($userId, $response, $generated && $attempts > 1));
    }

    /**
     * Sends a message to one connection (its `connected.client` id). Not sequenced, not stored: it
     * arrives on the pseudo-channel `client:<id>` with seq 0.
     *
     * @param array<mixed>|object $payload
     * @param string|array<mixed>|null $id As publish().
     * @throws ClientNotFound when no open connection has this id (404 `no_such_client`).
     * @throws HeraldException as publish()
     */
    public function publishToClient(string $clientId, string $type, array|object $payload, string|array|null $id = null): ClientPublishResult
    {
        $body = ['client' => $clientId] + $this->message($type, $payload, PublishId::from($id));
        [$response] = $this->requester->call('POST', '/api/publish', $body, isset($body['id']), [$body['id'] ?? null]);
        return $this->wrap(static fn () => ClientPublishResult::fromArray($response, $clientId));
    }

    /**
     * Several publishes in one request, published in order. The whole batch is validated first: one
     * invalid item publishes nothing (ValidationFailed, with the item index in getField(): `[1].type`).
     * An item whose connection is gone does not fail the batch: its ClientPublishResult says
     * `delivered === false` with `errorCode === 'no_such_client'`.
     *
     * @param list<array{
     *     channel?: string, channels?: list<string>, user?: string|int, client?: string,
     *     type: string, payload: array<mixed>|object, id?: string,
     * }> $messages
     *        Each with exactly one target: `channel`, `channels`, `user` (publishes to `user:<id>`) or `client`.
     * @return list<PublishResult|UserPublishResult|ClientPublishResult> One result per message, in order.
     * @throws HeraldException as publish()
     */
    public function publishMany(array $messages): array
    {
        if ($messages === [] || !array_is_list($messages)) {
            throw new \InvalidArgumentException('publishMany() takes a non-empty list of messages');
        }
        $bodies = [];
        $kinds = [];
        foreach ($messages as $i => $m) {
            [$bodies[], $kinds[]] = $this->batchItem($i, $m);
        }
        $ids = array_map(static fn (array $b): ?string => $b['id'] ?? null, $bodies);
        [$response, $attempts] = $this->requester->call('POST', '/api/publish', $bodies, $this->retries > 0, $ids);
        return $this->wrap(static function () use ($response, $kinds, $attempts): array {
            if (!array_is_list($response) || \count($response) !== \count($kinds)) {
                throw new \UnexpectedValueException('the response is not one result per message');
            }
            $out = [];
            foreach ($response as $i => $r) {
                if (!\is_array($r)) {
                    throw new \UnexpectedValueException('the response is not one result per message');
                }
                [$kind, $value, $generated] = $kinds[$i];
                $own = $generated && $attempts > 1;
                $out[] = match ($kind) {
                    'user' => UserPublishResult::fromUserArray((string) $value, $r, $own),
                    'client' => ClientPublishResult::fromArray($r, (string) $value),
                    default => PublishResult::fromArray($r, $own),
                };
            }
            return $out;
        });
    }

    /**
     * One message of a publishMany() batch: its request body, and how to read its result (the target
     * kind, the target, whether its id was generated here).
     *
     * @return array{0: array<string, mixed>, 1: array{0: string, 1: mixed, 2: bool}}
     */
    private function batchItem(int $i, mixed $m): array
    {
        if (!\is_array($m)) {
            throw new \InvalidArgumentException("message [$i] must be an array");
        }
        $unknown = array_diff_key($m, array_flip(['channel', 'channels', 'user', 'client', 'type', 'payload', 'id']));
        if ($unknown !== []) {
            throw new \InvalidArgumentException("message [$i] has unknown key(s): " . implode(', ', array_keys($unknown)));
        }
        $targets = array_values(array_intersect(['channel', 'channels', 'user', 'client'], array_keys($m)));
        if (\count($targets) !== 1) {
            throw new \InvalidArgumentException("message [$i] needs exactly one of channel, channels, user, client");
        }
        if (!isset($m['type']) || !\is_string($m['type']) || !\array_key_exists('payload', $m)) {
            throw new \InvalidArgumentException("message [$i] needs a string type and a payload");
        }
        if (isset($m['id']) && (!\is_string($m['id']) || $m['id'] === '')) {
            throw new \InvalidArgumentException("message [$i]: the publish id must be a non-empty string");
        }
        $target = $targets[0];
        $value = $m[$target];
        $body = $this->batchTarget($i, $target, $value);
        $generated = false;
        $body += $this->message($m['type'], $m['payload'], $m['id'] ?? null, "message [$i] payload", $generated);
        return [$body, [$target, $value, $generated]];
    }

    /**
     * Whether users are online (at least one authenticated connection, cluster-wide) and with how many
     * connections. At most 1000 ids; an empty list answers at once, without a request.
     *
     * @param list<string|int> $userIds
     * @throws HeraldException ValidationFailed for an invalid id, and the usual transport errors.
     */
    public function online(array $userIds): OnlineResult
    {
        $ids = [];
        foreach ($userIds as $id) {
            if (!\is_string($id) && !\is_int($id)) {
                throw new \InvalidArgumentException('user ids must be strings or ints, got ' . get_debug_type($id));
            }
            if (str_contains((string) $id, ',')) {
                // The ids travel comma-separated (?users=42,43); a user id never contains a comma.
                throw new \InvalidArgumentException("'$id' is not a user id: user ids have no commas");
            }
            $ids[] = (string) $id;
        }
        if ($ids === []) {
            return new OnlineResult([]);
        }
        [$response] = $this->requester->call('GET', '/api/online?users=' . rawurlencode(implode(',', $ids)), null, true);
        return $this->wrap(static fn () => OnlineResult::fromArray($response));
    }

    /**
     * A channel's subscriber count (cluster-wide) and current position (seq and epoch; seq 0 when nothing
     * was published in this epoch).
     *
     * @throws HeraldException ValidationFailed (`invalid_channel`) for an invalid name.
     */
    public function channel(string $name): ChannelInfo
    {
        [$response] = $this->requester->call('GET', '/api/channels/' . Requester::segment($name), null, true);
        return $this->wrap(static fn () => ChannelInfo::fromArray($response));
    }

    /**
     * Messages kept in a channel's history, oldest first.
     *
     * Without `$since`: the newest `$limit` messages. With `$since`: the messages after it, or
     * `complete === false` with no messages when the history no longer reaches back (or `$epoch` is not the
     * current epoch): never a partial list.
     *
     * @param int|null $since Return messages with a greater seq.
     * @param string|null $epoch The epoch `$since` belongs to.
     * @param int|null $limit At most this many messages (1-1000; the gateway's default is 100).
     * @throws HeraldException ValidationFailed for an invalid name or parameter.
     */
    public function history(string $name, ?int $since = null, ?string $epoch = null, ?int $limit = null): HistoryPage
    {
        $query = array_filter(['since' => $since, 'epoch' => $epoch, 'limit' => $limit], static fn ($v) => $v !== null);
        $path = '/api/history/' . Requester::segment($name) . ($query === [] ? '' : '?' . http_build_query($query, '', '&', PHP_QUERY_RFC3986));
        [$response] = $this->requester->call('GET', $path, null, true);
        return $this->wrap(static fn () => HistoryPage::fromArray($response));
    }

    /**
     * The messages kept in a user's inbox (not yet acknowledged, not expired), oldest first.
     *
     * @param int|null $limit At most this many (1-1000; the gateway's default is 100).
     * @return list<InboxMessage>
     * @throws HeraldException ValidationFailed for an invalid user id or limit.
     */
    public function inbox(string|int $userId, ?int $limit = null): array
    {
        $path = '/api/users/' . Requester::segment((string) $userId) . '/inbox' . ($limit === null ? '' : '?limit=' . $limit);
        [$response] = $this->requester->call('GET', $path, null, true);
        return $this->wrap(static function () use ($response): array {
            $out = [];
            foreach (Internal\Read::array($response, 'messages') as $m) {
                if (!\is_array($m)) {
                    throw new \UnexpectedValueException('response member messages is malformed');
                }
                $out[] = InboxMessage::fromArray($m);
            }
            return $out;
        });
    }

    /**
     * Removes one message from a user's inbox (as if acknowledged, without a receipt or a webhook).
     *
     * @throws Exception\NotFound (`no_such_message`) when it is not there: acknowledged, removed or expired.
     * @throws HeraldException
     */
    public function removeFromInbox(string|int $userId, string $messageId): void
    {
        $path = '/api/users/' . Requester::segment((string) $userId) . '/inbox/' . Requester::segment($messageId);
        // Not retried: a retry after a lost answer would report NotFound for the message this call removed.
        $this->requester->call('DELETE', $path, null, false);
    }

    /**
     * Removes every message from a user's inbox; returns how many there were.
     *
     * @throws HeraldException
     */
    public function clearInbox(string|int $userId): int
    {
        [$response] = $this->requester->call('DELETE', '/api/users/' . Requester::segment((string) $userId) . '/inbox', null, true);
        return $this->wrap(static fn () => Internal\Read::int($response, 'removed'));
    }

    /**
     * The delivery receipt of an inbox message published with `receipt: true`: pending, delivered to N
     * connections, or acknowledged, with times.
     *
     * @throws Exception\NotFound (`no_such_message`) when there is none: no receipt was asked for, or it expired.
     * @throws HeraldException
     */
    public function receipt(string $messageId): Receipt
    {
        [$response] = $this->requester->call('GET', '/api/receipts/' . Requester::segment($messageId), null, true);
        return $this->wrap(static fn () => Receipt::fromArray($response));
    }

    /**
     * Closes every connection of a user (on every node). Returns how many were closed (0 is fine).
     *
     * @param int|null $code Close code sent to the clients: 1000 or 4000-4999; default 4509 (terminal:
     *                       clients do not reconnect). A 4000-4499 code makes them reconnect.
     * @param string|null $reason Close reason, at most 123 bytes of UTF-8.
     * @throws HeraldException
     */
    public function disconnectUser(string|int $userId, ?int $code = null, ?string $reason = null): int
    {
        return $this->disconnect(user: $userId, code: $code, reason: $reason);
    }

    /**
     * Closes one connection. Returns 1.
     *
     * @throws ClientNotFound when no open connection has this id.
     * @throws HeraldException
     */
    public function disconnectClient(string $clientId, ?int $code = null, ?string $reason = null): int
    {
        return $this->disconnect(client: $clientId, code: $code, reason: $reason);
    }

    /**
     * Closes the connections of a user or one connection: exactly one of `$user` and `$client`
     * (`$herald->disconnect(user: 42, reason: 'logged out')`). Returns how many were closed.
     *
     * Disconnecting a user is retried like the other calls; disconnecting one client is not (a retry
     * after a lost answer would report ClientNotFound for a connection this call closed).
     *
     * @throws ClientNotFound for a `$client` that has no open connection.
     * @throws HeraldException
     */
    public function disconnect(string|int|null $user = null, ?string $client = null, ?int $code = null, ?string $reason = null): int
    {
        if (($user === null) === ($client === null)) {
            throw new \InvalidArgumentException('disconnect() needs exactly one of user and client');
        }
        $body = $user !== null ? ['user' => (string) $user] : ['client' => $client];
        if ($code !== null) {
            $body['code'] = $code;
        }
        if ($reason !== null) {
            $body['reason'] = $reason;
        }
        [$response] = $this->requester->call('POST', '/api/disconnect', $body, $user !== null);
        return $this->wrap(static fn () => Internal\Read::int($response, 'disconnected'));
    }

    /**
     * The target members of a publishMany() message: `user` becomes its `user:<id>` channel.
     *
     * @return array<string, mixed>
     */
    private function batchTarget(int $i, string $target, mixed $value): array
    {
        if ($target === 'user') {
            return \is_string($value) || \is_int($value)
                ? ['channel' => 'user:' . $value]
                : throw new \InvalidArgumentException("message [$i]: user must be a string or int");
        }
        if ($target === 'client') {
            return \is_string($value) ? ['client' => $value] : throw new \InvalidArgumentException("message [$i]: client must be a string");
        }
        return \is_string($value) || \is_array($value)
            ? $this->target($value)
            : throw new \InvalidArgumentException("message [$i]: $target must be a channel name or a list of them");
    }

    /**
     * @param string|array<mixed> $channels
     * @return array{channel: string}|array{channels: list<string>}
     */
    private function target(string|array $channels): array
    {
        if (\is_string($channels)) {
            return ['channel' => $channels];
        }
        if ($channels === [] || !array_is_list($channels)) {
            throw new \InvalidArgumentException('channels must be a channel name or a non-empty list of channel names');
        }
        foreach ($channels as $c) {
            if (!\is_string($c)) {
                throw new \InvalidArgumentException('channel names must be strings, got ' . get_debug_type($c));
            }
        }
        return \count($channels) === 1 ? ['channel' => $channels[0]] : ['channels' => $channels];
    }

    /**
     * The type, payload and id members of a publish; generates an id when retries are on and none is given.
     *
     * @param mixed $payload
     * @param bool|null $generated Set to whether the id was generated here.
     * @return array{type: string, payload: array<mixed>|object, id?: string}
     */
    private function message(string $type, $payload, ?string $id, string $what = 'payload', ?bool &$generated = null): array
    {
        $generated = false;
        $m = ['type' => $type, 'payload' => Json::payload($payload, $what)];
        if ($id !== null) {
            $m['id'] = $id;
        } elseif ($this->retries > 0) {
            // A retry after a lost answer must not publish twice: the gateway drops a repeated id.
            $m['id'] = 'php-' . bin2hex(random_bytes(12));
            $generated = true;
        }
        return $m;
    }

    /**
     * Builds a result, reporting a malformed response as a HeraldException (`invalid_response`).
     *
     * @template T
     * @param callable(): T $build
     * @return T
     */
    private function wrap(callable $build)
    {
        try {
            return $build();
        } catch (\UnexpectedValueException | \OutOfBoundsException $e) {
            throw new HeraldException('the gateway answered with an unexpected response: ' . $e->getMessage(), 'invalid_response', 200, null, null, [], $e);
        }
    }
}
