<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 401 `unauthorized`: the API key is missing or wrong. */
class Unauthorized extends HeraldException
{
}
