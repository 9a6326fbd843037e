<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 401 `unauthorized`: the API key is missing or wrong. */
final class Unauthorized extends HeraldException
{
}
