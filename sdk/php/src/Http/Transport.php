<?php

declare(strict_types=1);

namespace Herald\Http;

use Herald\Exception\TransportError;

/**
 * How the Client sends HTTP requests. The default is CurlTransport; inject your own (a PSR-18 adapter, a
 * fake in tests) through the Client's `transport` option.
 */
interface Transport
{
    /**
     * Sends the request and returns the response, whatever its status (4xx and 5xx included).
     *
     * @throws TransportError when no response arrived: connection refused or reset, DNS failure, timeout
     *                        (error code `timeout`).
     */
    public function send(Request $request): Response;
}
