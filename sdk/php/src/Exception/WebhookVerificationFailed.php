<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * A webhook request that Herald\Webhook::verify() refused: do not act on it, answer it with 400 or 401.
 * getErrorCode() says why, getField() names the header at fault:
 *
 * - `webhook_missing_header`: `webhook-id`, `webhook-timestamp` or `webhook-signature` is missing or empty;
 * - `webhook_invalid_header`: the timestamp is not a number of seconds, or a header is repeated with
 *   different values;
 * - `webhook_timestamp_out_of_tolerance`: the timestamp is more than 5 minutes from now (a replay, or a
 *   clock that is off); getDetails() has `timestamp`, `now` and `tolerance`;
 * - `webhook_invalid_signature`: no `v1` signature matches the secret (a tampered body, id or timestamp,
 *   or another secret);
 * - `webhook_invalid_payload`: the signature is valid but the body is not a JSON object or array.
 *
 * getStatus() is 0: this is about a request Herald sent you, not an answer from the gateway.
 */
final class WebhookVerificationFailed extends HeraldException
{
}
