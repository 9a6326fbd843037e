<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\HeraldException;
use Herald\Exception\ServiceUnavailable;
use Herald\Exception\ValidationFailed;
use Herald\Internal\Json;
use Herald\Internal\Options;
use Herald\Internal\PublishId;
use Herald\Internal\Url;
use Herald\Result\ChannelResult;
use Herald\Result\PublishResult;
use Herald\Result\UserPublishResult;

/**
 * Publishes straight into the Redis of a Redis-engine gateway cluster, without an HTTP round trip, through
 * the gateway's own Lua script (`resources/publish.lua`, a byte-for-byte copy of the gateway's
 * `packages/server/lua/publish.lua` that the repository's tests keep identical): the message gets its seq,
 * goes into the channel's history and reaches every gateway node exactly as if it had been published
 * through the HTTP API, idempotency ids included.
 *
 *     $redis = new \Redis();
 *     $redis->connect('127.0.0.1', 6379);
 *     $publisher = new Herald\RedisPublisher($redis);
 *     $publisher->publishToUser(42, 'notice', ['text' => 'Your export is ready']);
 *
 * Needs phpredis (ext-redis). Publishing to one connection (`client`) is only possible over HTTP.
 */
final class RedisPublisher
{
    /**
     * Option defaults, as the keys of the deprecated options array.
     *
     * @deprecated Pass a Herald\RedisPublisherOptions; its constructor holds the defaults.
     */
    public const DEFAULTS = [
        'script' => null,
        'prefix' => 'herald',
        'historySize' => null,
        'historyTtl' => null,
        'historyMetaTtl' => null,
        'idempotencyTtl' => null,
        'sharded' => false,
        'presence' => true,
    ];

    /** How the script's error codes read in the HTTP API's terms: [error code, field]. */
    private const SCRIPT_ERRORS = [
        'INVALID_CHANNEL' => ['invalid_channel', 'channel'],
        'INVALID_TYPE' => ['invalid_field', 'type'],
        'RESERVED_TYPE' => ['reserved_type', 'type'],
        'INVALID_PAYLOAD' => ['invalid_field', 'payload'],
        'PAYLOAD_TOO_DEEP' => ['payload_too_deep', 'payload'],
        'INVALID_ARGUMENT' => ['invalid_field', null],
    ];

    private readonly string $source;
    private readonly string $sha;
    private readonly string $prefix;
    /** @var list<string> ARGV[5..9] of the script */
    private readonly array $limits;
    private readonly bool $presence;

    /**
     * @param \Redis|\RedisCluster $redis A connected phpredis client (the gateway's Redis).
     * @param RedisPublisherOptions|array<string, mixed>|null $options Key prefix, history limits, script;
     *        null for the gateway's defaults. An array with the same keys is still accepted but deprecated.
     * @throws \InvalidArgumentException for an unknown or invalid option, or an unreadable script file.
     */
    public function __construct(private readonly \Redis|\RedisCluster $redis, RedisPublisherOptions|array|null $options = null)
    {
        $options = self::options($options);
        $this->source = self::readScript($options->script ?? self::defaultScriptPath());
        $this->sha = sha1($this->source);
        $this->prefix = $options->prefix;
        $limits = [];
        foreach ([$options->historySize, $options->historyTtl, $options->historyMetaTtl, $options->idempotencyTtl] as $limit) {
            // The script reads an empty string as "its default", which is the gateway's default.
            $limits[] = $limit === null ? '' : (string) $limit;
        }
        $limits[] = $options->sharded ? '1' : '0';
        $this->limits = $limits;
        $this->presence = $options->presence;
    }

    /** The script's source; an unreadable or empty file is an \InvalidArgumentException. */
    private static function readScript(string $path): string
    {
        $source = is_file($path) && is_readable($path) ? file_get_contents($path) : false;
        if ($source === false || $source === '') {
            throw new \InvalidArgumentException(sprintf(
                "cannot read the gateway's publish script at %s: pass the path of a publish.lua as the script option"
                . ' (the SDK ships one in resources/publish.lua; the gateway\'s is packages/server/lua/publish.lua)',
                $path,
            ));
        }
        return $source;
    }

    /** @param RedisPublisherOptions|array<string, mixed>|null $options */
    private static function options(RedisPublisherOptions|array|null $options): RedisPublisherOptions
    {
        if (!\is_array($options)) {
            return $options ?? new RedisPublisherOptions();
        }
        if ($options !== []) {
            Options::deprecated('passing an array of options to Herald\RedisPublisher is deprecated: pass a Herald\RedisPublisherOptions');
        }
        return RedisPublisherOptions::fromArray($options);
    }

    /**
     * Connects to Redis from a URL (`redis://[:password@]host[:port][/db]`) and returns a publisher.
     *
     * @param RedisPublisherOptions|array<string, mixed>|null $options As the constructor's.
     * @param float $timeout Seconds to connect, and to wait for each reply.
     * @throws ServiceUnavailable when Redis cannot be reached.
     */
    public static function fromUrl(string $url, RedisPublisherOptions|array|null $options = null, float $timeout = 2.0): self
    {
        // Options first: an invalid one is a programming error, reported before any connection.
        $options = self::options($options);
        if (!\extension_loaded('redis')) {
            throw new \LogicException('Herald\RedisPublisher needs phpredis (apt install php-redis, or pecl install redis)');
        }
        [$parts, $db] = self::parseRedisUrl($url);
        $redis = new \Redis();
        try {
            $host = ($parts['scheme'] === 'rediss' ? 'tls://' : '') . $parts['host'];
            if (!$redis->connect($host, $parts['port'] ?? 6379, $timeout, null, 0, $timeout)) {
                throw new \RedisException('connect failed');
            }
            if (isset($parts['pass'])) {
                $auth = isset($parts['user']) && $parts['user'] !== ''
                    ? [rawurldecode($parts['user']), rawurldecode($parts['pass'])]
                    : rawurldecode($parts['pass']);
                $redis->auth($auth);
            }
            if ($db > 0 && !$redis->select($db)) {
                throw new \RedisException("cannot select database $db: " . ($redis->getLastError() ?? 'refused'));
            }
        } catch (\RedisException $e) {
            throw new ServiceUnavailable("cannot connect to Redis at {$parts['host']}: " . $e->getMessage(), 'engine_unavailable', 0, null, null, [], $e);
        }
        return new self($redis, $options);
    }

    /**
     * The parts of a Redis URL and its database number (0 when none); its password never shows in an error.
     *
     * @return array{0: array{scheme: string, host: string, port?: int, user?: string, pass?: string}, 1: int}
     */
    private static function parseRedisUrl(string $url): array
    {
        $parts = parse_url($url);
        if ($parts === false || !\in_array($parts['scheme'] ?? '', ['redis', 'rediss'], true) || !isset($parts['host'])) {
            throw new \InvalidArgumentException('not a Redis URL: ' . Url::redact($url) . ' (expected redis://[:password@]host:port/db)');
        }
        $path = ltrim($parts['path'] ?? '', '/');
        if ($path !== '' && preg_match('/^(0|[1-9][0-9]{0,4})$/D', $path) !== 1) {
            throw new \InvalidArgumentException('the database of a Redis URL is a number: ' . Url::redact($url));
        }
        return [$parts, (int) $path];
    }

    /**
     * Where the script is by default: the SDK's own `resources/publish.lua`, so that an install without
     * the rest of the Herald repository (Composer) works as is.
     */
    public static function defaultScriptPath(): string
    {
        return \dirname(__DIR__) . '/resources/publish.lua';
    }

    /** The SHA1 of the script, as EVALSHA takes it. */
    public function scriptSha(): string
    {
        return $this->sha;
    }

    /**
     * Loads the script into Redis (SCRIPT LOAD) ahead of the first publish. Optional: a publish runs
     * EVALSHA and falls back to EVAL when Redis does not know the script (NOSCRIPT).
     *
     * @throws HeraldException when Redis refuses it or cannot be reached.
     */
    public function load(): string
    {
        $sha = $this->call(fn () => $this->redis instanceof \RedisCluster
            ? $this->redis->script($this->prefix . ':{x}', 'load', $this->source)
            : $this->redis->script('load', $this->source));
        if ($sha !== $this->sha) {
            throw new HeraldException('SCRIPT LOAD answered ' . var_export($sha, true) . ", expected {$this->sha}", 'redis_error');
        }
        return $sha;
    }

    /**
     * Publishes a message to one channel or to several (one script run per channel, each gets its own seq).
     * Same arguments and result as Client::publish().
     *
     * @param string|list<string> $channels
     * @param array<mixed>|object $payload A JSON object or array (an empty PHP array is sent as `{}`).
     * @param string|array<mixed>|null $id Idempotency key (1-200 characters), shared with the HTTP API's:
     *                                     the same id published over HTTP and over Redis publishes once.
     *                                     (An `['id' => ...]` array is still accepted, deprecated.)
     * @throws \InvalidArgumentException a scalar payload, an empty channel list, an unknown option.
     * @throws ValidationFailed an invalid channel or type (`invalid_channel`, `invalid_field`, `reserved_type`).
     * @throws ServiceUnavailable Redis cannot be reached (`engine_unavailable`).
     */
    public function publish(string|array $channels, string $type, array|object $payload, string|array|null $id = null): PublishResult
    {
        $list = \is_string($channels) ? [$channels] : $channels;
        if ($list === [] || !array_is_list($list)) {
            throw new \InvalidArgumentException('channels must be a channel name or a non-empty list of channel names');
        }
        foreach ($list as $channel) {
            if (!\is_string($channel)) {
                throw new \InvalidArgumentException('channel names must be strings, got ' . get_debug_type($channel));
            }
        }
        $id = self::publishId($id);
        $json = Json::encode(Json::payload($payload));
        $results = [];
        // Duplicates are merged, as the HTTP API does.
        foreach (array_unique($list) as $channel) {
            $results[$channel] = $this->publishOne($channel, $type, $json, $id);
        }
        return new PublishResult($id, $results);
    }

    /**
     * Publishes to `user:<id>`; the result says whether the user is online (with the `presence` option).
     *
     * @param array<mixed>|object $payload
     * @param string|array<mixed>|null $id As publish().
     * @throws HeraldException as publish()
     */
    public function publishToUser(string|int $userId, string $type, array|object $payload, string|array|null $id = null): UserPublishResult
    {
        $userId = (string) $userId;
        $channel = 'user:' . $userId;
        $id = self::publishId($id);
        $result = $this->publishOne($channel, $type, Json::encode(Json::payload($payload)), $id);
        return new UserPublishResult($userId, $id, [$channel => $result]);
    }

    /** @param string|array<mixed>|null $id */
    private static function publishId(string|array|null $id): ?string
    {
        $id = PublishId::from($id);
        if ($id !== null && \strlen($id) > 200) {
            // The script would take a longer key; the HTTP API refuses it, so this does too.
            throw new \InvalidArgumentException('the publish id must be a string of 1-200 characters');
        }
        return $id;
    }

    private function publishOne(string $channel, string $type, string $payloadJson, ?string $id): ChannelResult
    {
        // Keys of one channel share the hash tag {<channel>}: one cluster slot. Braces in a name would
        // break the tag; the script refuses such a name, but only after the keys were routed.
        if (str_contains($channel, '{') || str_contains($channel, '}')) {
            throw new ValidationFailed("invalid channel name $channel", 'invalid_channel', 0, 'channel');
        }
        // The HTTP API's rules for the channels the gateway keeps to itself (the script would take them).
        if (str_starts_with($channel, 'client:')) {
            throw new ValidationFailed(
                "$channel: publish to one connection over HTTP (Client::publishToClient), not to a client: channel",
                'invalid_channel',
                0,
                'channel',
            );
        }
        if (str_starts_with($channel, 'herald:')) {
            throw new HeraldException("$channel: herald: channels are the gateway's own", 'forbidden', 0, 'channel');
        }
        $base = "{$this->prefix}:{{$channel}}";
        $keys = ["$base:meta", "$base:stream"];
        if ($id !== null) {
            $keys[] = "$base:idem:$id";
        }

        // The client's own key prefix (phpredis OPT_PREFIX, which Laravel sets) would move every key, and the
        // pub/sub channel derived from them, where no gateway looks: the keys are the gateway's, as given.
        $clientPrefix = $this->redis->getOption(\Redis::OPT_PREFIX);
        if (\is_string($clientPrefix) && $clientPrefix !== '') {
            $this->redis->setOption(\Redis::OPT_PREFIX, '');
        }
        try {
            return $this->publishKeys($channel, $base, $keys, [$channel, $type, $payloadJson, TokenIssuer::base64url(random_bytes(6)), ...$this->limits]);
        } finally {
            if (\is_string($clientPrefix) && $clientPrefix !== '') {
                $this->redis->setOption(\Redis::OPT_PREFIX, $clientPrefix);
            }
        }
    }

    /**
     * @param list<string> $keys
     * @param list<string> $args
     */
    private function publishKeys(string $channel, string $base, array $keys, array $args): ChannelResult
    {
        $reply = $this->script($keys, $args);
        if (!\is_array($reply) || !\is_int($reply[0] ?? null) || !\is_string($reply[1] ?? null)) {
            throw new HeraldException('unexpected reply from the publish script: ' . json_encode($reply), 'redis_error');
        }
        [$seq, $epoch, $duplicate] = [$reply[0], $reply[1], ($reply[2] ?? 0) === 1];

        $subscribers = 0;
        $online = null;
        if (str_starts_with($channel, 'user:')) {
            $online = false;
        }
        if ($this->presence) {
            // Presence entries are scored by their expiry time in ms: count those still ahead.
            $now = (string) (int) floor(microtime(true) * 1000);
            $subscribers = (int) $this->call(fn () => $this->redis->zCount("$base:members", $now, '+inf'));
            if ($online !== null) {
                $user = substr($channel, 5);
                $online = (int) $this->call(fn () => $this->redis->zCount("{$this->prefix}:user:{{$user}}", $now, '+inf')) > 0;
            }
        }
        return new ChannelResult($channel, $seq, $epoch, $duplicate, $subscribers, $online);
    }

    /**
     * EVALSHA, and EVAL when Redis does not have the script (after a restart or SCRIPT FLUSH).
     *
     * @param list<string> $keys
     * @param list<string> $args
     * @return mixed
     */
    private function script(array $keys, array $args)
    {
        $argv = [...$keys, ...$args];
        try {
            return $this->call(fn () => $this->redis->evalSha($this->sha, $argv, \count($keys)));
        } catch (HeraldException $e) {
            if (!str_starts_with($e->getMessage(), 'NOSCRIPT')) {
                throw $e;
            }
        }
        return $this->call(fn () => $this->redis->eval($this->source, $argv, \count($keys)));
    }

    /**
     * Runs a phpredis call, turning its two ways of failing (an exception, or `false` with getLastError())
     * into typed exceptions: script errors as ValidationFailed, the rest as ServiceUnavailable.
     *
     * @param callable(): mixed $fn
     * @return mixed
     */
    private function call(callable $fn)
    {
        try {
            $this->redis->clearLastError();
            $out = $fn();
        } catch (\RedisException $e) {
            throw $this->error($e->getMessage(), $e);
        }
        $error = $this->redis->getLastError();
        if ($out === false && \is_string($error) && $error !== '') {
            throw $this->error($error, null);
        }
        return $out;
    }

    private function error(string $message, ?\Throwable $previous): HeraldException
    {
        $word = (string) strtok($message, ' ');
        if (isset(self::SCRIPT_ERRORS[$word])) {
            [$code, $field] = self::SCRIPT_ERRORS[$word];
            return new ValidationFailed($message, $code, 0, $field, null, [], $previous);
        }
        // An error reply starts with an upper-case code (ERR, WRONGTYPE, NOSCRIPT, ...); phpredis's own
        // connection errors ("Connection refused", "read error on connection") do not.
        if (preg_match('/^[A-Z][A-Z_]+$/D', $word) === 1 && !\in_array($word, ['LOADING', 'BUSY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN'], true)) {
            return new HeraldException($word === 'NOSCRIPT' ? $message : "Redis refused the command: $message", 'redis_error', 0, null, null, [], $previous);
        }
        return new ServiceUnavailable("Redis is unavailable: $message", 'engine_unavailable', 0, null, null, [], $previous);
    }
}
