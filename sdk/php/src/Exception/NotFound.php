<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 404 `not_found` (no such route: check the base URL), and the parent of ClientNotFound. */
class NotFound extends HeraldException
{
}
