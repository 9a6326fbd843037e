<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * HTTP 503 (`engine_unavailable`, `shutting_down`), or 502/504 from a proxy in front of the gateway (code
 * `service_unavailable`): nothing was accepted. Retry later with the same publish id (the Client already
 * retried, see its `retries` option). Its subclass OutcomeUnknown (504 `engine_timeout`) is the exception:
 * there the publish may have happened.
 */
class ServiceUnavailable extends HeraldException
{
}
