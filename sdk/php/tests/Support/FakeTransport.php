<?php

declare(strict_types=1);

namespace Herald\Tests\Support;

use Herald\Exception\TransportError;
use Herald\Http\Request;
use Herald\Http\Response;
use Herald\Http\Transport;

/** A Transport that records requests and answers from a script: Responses, or exceptions to throw. */
final class FakeTransport implements Transport
{
    /** @var list<Request> */
    public array $requests = [];

    /** @param list<Response|TransportError> $script answers, in order */
    public function __construct(private array $script = [])
    {
    }

    public function send(Request $request): Response
    {
        $this->requests[] = $request;
        $next = array_shift($this->script);
        if ($next === null) {
            throw new \LogicException('FakeTransport: no scripted answer left for ' . $request->method . ' ' . $request->url);
        }
        if ($next instanceof TransportError) {
            throw $next;
        }
        return $next;
    }

    /** @param array<mixed> $body */
    public static function json(int $status, array $body, array $headers = []): Response
    {
        return new Response($status, ['Content-Type' => 'application/json'] + $headers, json_encode($body, JSON_THROW_ON_ERROR));
    }

    /** @return array<mixed> the decoded body of request $i */
    public function body(int $i): array
    {
        return json_decode((string) $this->requests[$i]->body, true, 512, JSON_THROW_ON_ERROR);
    }
}
