<?php

declare(strict_types=1);

namespace Herald;

/**
 * The SDK's version, written here and nowhere else: the User-Agent (`herald-php/<version>`) and
 * Client::VERSION read it, and composer.json carries no version of its own (a test checks both).
 */
final class Version
{
    /** The SDK version (semantic versioning). */
    public const VERSION = '0.1.0';

    private function __construct()
    {
    }
}
