<?php

declare(strict_types=1);

namespace Herald\Tests\Support;

/**
 * A WebSocket client for tests, run as a Node child process (ws-client.mjs) that prints every frame and
 * the close as JSON lines. Events are queued in arrival order so none is missed; wait*() block on the
 * child's output with a deadline, never a fixed sleep.
 */
final class WsClient
{
    /** @var resource */
    private $process;
    /** @var resource */
    private $stdin;
    /** @var resource */
    private $stdout;
    private string $buffer = '';
    /** @var list<array<string, mixed>> every event so far */
    public array $events = [];
    private int $cursor = 0;

    /**
     * @param string $url The gateway's WebSocket URL.
     * @param array<string, mixed>|null $connect The connect frame (without `type`); null sends none.
     */
    public function __construct(string $url, ?array $connect = ['batch' => false])
    {
        $args = [Env::node(), __DIR__ . '/ws-client.mjs', $url];
        if ($connect !== null) {
            $args[] = json_encode(['type' => 'connect'] + $connect, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
        }
        $process = proc_open($args, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => STDERR], $pipes);
        if (!\is_resource($process)) {
            throw new \RuntimeException('cannot start node ' . __DIR__ . '/ws-client.mjs');
        }
        $this->process = $process;
        $this->stdin = $pipes[0];
        $this->stdout = $pipes[1];
        stream_set_blocking($this->stdout, false);
    }

    /** The `connected` frame, once connect() saw it. @var array<string, mixed>|null */
    public ?array $connected = null;

    /**
     * Opens a connection with a token (null: anonymous) and waits for `connected`.
     *
     * @param list<string> $subs Channels to subscribe to in the connect frame.
     */
    public static function connect(string $url, ?string $token, array $subs = []): self
    {
        $connect = ['batch' => false];
        if ($token !== null) {
            $connect['token'] = $token;
        }
        if ($subs !== []) {
            $connect['subs'] = array_fill_keys($subs, new \stdClass());
        }
        $client = new self($url, $connect);
        $client->connected = $client->waitFrame(static fn (array $f) => $f['type'] === 'connected');
        return $client;
    }

    /**
     * Waits for the next event (after those already consumed) that matches; returns it.
     *
     * @param callable(array<string, mixed>): bool $match
     * @return array<string, mixed>
     */
    public function waitEvent(callable $match, float $timeout = 10.0, string $what = 'an event'): array
    {
        $deadline = microtime(true) + $timeout;
        for (;;) {
            while ($this->cursor < \count($this->events)) {
                $e = $this->events[$this->cursor++];
                if ($match($e)) {
                    return $e;
                }
            }
            $left = $deadline - microtime(true);
            if ($left <= 0 || !\is_resource($this->stdout)) {
                $events = json_encode($this->events, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
                throw new \RuntimeException(($left <= 0 ? 'timed out' : 'the client exited') . " waiting for $what; events so far: $events");
            }
            $this->read($left);
        }
    }

    /**
     * Waits for the next frame that matches.
     *
     * @param callable(array<string, mixed>): bool $match
     * @return array<string, mixed>
     */
    public function waitFrame(callable $match, float $timeout = 10.0): array
    {
        return $this->waitEvent(static fn (array $e) => $e['event'] === 'frame' && $match($e['frame']), $timeout, 'a frame')['frame'];
    }

    /** Waits for the next application message (a frame with a `seq`) on a channel. */
    public function waitMessage(string $channel, float $timeout = 10.0): array
    {
        return $this->waitFrame(static fn (array $f) => isset($f['seq']) && ($f['channel'] ?? null) === $channel, $timeout);
    }

    /** Like waitMessage(), but returns the frame's JSON text exactly as the gateway sent it. */
    public function waitMessageRaw(string $channel, float $timeout = 10.0): string
    {
        $match = static fn (array $e) => $e['event'] === 'frame' && isset($e['frame']['seq']) && ($e['frame']['channel'] ?? null) === $channel;
        return $this->waitEvent($match, $timeout, "a message on $channel")['raw'];
    }

    /** Waits for the close; returns `['code' => int, 'reason' => string]`. */
    public function waitClose(float $timeout = 10.0): array
    {
        $e = $this->waitEvent(static fn (array $e) => $e['event'] === 'close', $timeout, 'the close');
        return ['code' => $e['code'], 'reason' => $e['reason']];
    }

    /** Sends one text frame. */
    public function send(array $frame): void
    {
        fwrite($this->stdin, json_encode($frame, JSON_THROW_ON_ERROR) . "\n");
    }

    /** Closes the socket and ends the child process. */
    public function close(): void
    {
        if (\is_resource($this->stdin)) {
            fclose($this->stdin);
        }
        if (\is_resource($this->process)) {
            $deadline = microtime(true) + 5;
            while (\is_resource($this->stdout) && microtime(true) < $deadline) {
                $this->read(0.05);
            }
            if (proc_get_status($this->process)['running']) {
                proc_terminate($this->process);
            }
            if (\is_resource($this->stdout)) {
                fclose($this->stdout);
            }
            proc_close($this->process);
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    private function read(float $timeout): void
    {
        if (!\is_resource($this->stdout)) {
            return;
        }
        $r = [$this->stdout];
        $w = $e = null;
        $sec = (int) $timeout;
        if (@stream_select($r, $w, $e, $sec, (int) (($timeout - $sec) * 1e6)) > 0) {
            $chunk = fread($this->stdout, 65536);
            if ($chunk === '' || $chunk === false) {
                if (feof($this->stdout)) {
                    fclose($this->stdout);
                }
                return;
            }
            $this->buffer .= $chunk;
            while (($nl = strpos($this->buffer, "\n")) !== false) {
                $line = substr($this->buffer, 0, $nl);
                $this->buffer = substr($this->buffer, $nl + 1);
                $this->events[] = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
            }
        }
    }
}
