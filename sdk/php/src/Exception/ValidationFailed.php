<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * HTTP 400: the gateway refused the request as invalid (`invalid_body`, `missing_field`, `invalid_field`,
 * `invalid_channel`, `reserved_type`). getField() names the offending field, e.g. `channel`, `type` or
 * `[1].type` in a publishMany() batch. Fix the request; retrying does not help.
 */
final class ValidationFailed extends HeraldException
{
}
