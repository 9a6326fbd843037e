<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * HTTP 404 `no_such_client`: no open connection has this client id (it closed, never existed, or has not
 * finished connecting). Do not retry; reach the user through `user:<id>` if the message still matters.
 */
final class ClientNotFound extends NotFound
{
}
