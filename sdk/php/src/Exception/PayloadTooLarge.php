<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 413 `body_too_large`: the request body exceeds the gateway's maxBodySize; getDetails()['limit'] is the limit in bytes. */
final class PayloadTooLarge extends HeraldException
{
}
