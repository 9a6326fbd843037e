<?php

declare(strict_types=1);

namespace Herald\Http;

use Herald\Exception\TransportError;
use Herald\Internal\Url;

/**
 * The default Transport, on ext-curl. One curl handle is kept and reused, so consecutive calls from a
 * long-running worker share a kept-alive connection to the gateway.
 */
final class CurlTransport implements Transport
{
    private ?\CurlHandle $handle = null;

    /**
     * @param array<int, mixed> $curlOptions Extra CURLOPT_* options applied to every request (a proxy, a CA
     *                                       bundle, ...). They cannot override the method, URL, headers,
     *                                       body or timeouts, which come from the Request.
     */
    public function __construct(private readonly array $curlOptions = [])
    {
        if (!\extension_loaded('curl')) {
            throw new \LogicException('Herald\Http\CurlTransport needs the curl extension (apt install php-curl), or pass your own Herald\Http\Transport');
        }
    }

    public function send(Request $request): Response
    {
        if ($this->handle === null) {
            $this->handle = curl_init();
        } else {
            curl_reset($this->handle);
        }
        $h = $this->handle;

        $headerLines = [];
        foreach ($request->headers as $name => $value) {
            $headerLines[] = $name . ': ' . $value;
        }
        // curl sends "Expect: 100-continue" for bodies over 1 KiB and then waits for an interim answer;
        // an empty Expect header turns that round trip off.
        $headerLines[] = 'Expect:';

        $responseHeaders = [];
        $options = $this->curlOptions + [
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
        ];
        $options = [
            CURLOPT_URL => $request->url,
            CURLOPT_CUSTOMREQUEST => $request->method,
            CURLOPT_HTTPHEADER => $headerLines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            // Sub-second timeouts need NOSIGNAL on builds that resolve names with signals.
            CURLOPT_NOSIGNAL => true,
            CURLOPT_TIMEOUT_MS => max(1, (int) ceil($request->timeout * 1000)),
            CURLOPT_CONNECTTIMEOUT_MS => max(1, (int) ceil($request->connectTimeout * 1000)),
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$responseHeaders): int {
                $trimmed = trim($line);
                if (str_starts_with($trimmed, 'HTTP/')) {
                    // A new response (after a 100 Continue, for instance): forget earlier headers.
                    $responseHeaders = [];
                } elseif ($trimmed !== '' && str_contains($trimmed, ':')) {
                    [$name, $value] = explode(':', $trimmed, 2);
                    $responseHeaders[strtolower(trim($name))] = trim($value);
                }

                return \strlen($line);
            },
        ] + $options;
        if ($request->body !== null) {
            $options[CURLOPT_POSTFIELDS] = $request->body;
        } elseif ($request->method === 'GET') {
            $options[CURLOPT_HTTPGET] = true;
        }
        curl_setopt_array($h, $options);

        $body = curl_exec($h);
        if ($body === false || !\is_string($body)) {
            $errno = curl_errno($h);
            $error = curl_error($h);
            // Bytes of the request were written: the gateway may have acted on it (its answer is what was lost).
            $sent = (int) curl_getinfo($h, CURLINFO_REQUEST_SIZE) > 0;
            // A broken connection must not be reused for the next request.
            curl_close($h);
            $this->handle = null;
            $timeout = $errno === CURLE_OPERATION_TIMEDOUT;
            // Neither the URL's password (a proxy's, say) nor curl's echo of it goes into the message.
            $url = Url::redact($request->url);
            $error = str_replace($request->url, $url, $error);
            throw new TransportError(
                sprintf('%s %s: %s (curl error %d)', $request->method, $url, $error !== '' ? $error : 'request failed', $errno),
                $timeout ? 'timeout' : 'transport_error',
                0,
                null,
                $request->headers['X-Request-Id'] ?? null,
                ['curl_errno' => $errno, 'sent' => $sent],
            );
        }

        return new Response((int) curl_getinfo($h, CURLINFO_RESPONSE_CODE), $responseHeaders, $body);
    }


    public function __destruct()
    {
        if ($this->handle !== null) {
            curl_close($this->handle);
        }
    }
}
