<?php

declare(strict_types=1);

/*
 * The SDK's own PSR-4 autoloader, for applications that do not use Composer:
 *
 *     require '/path/to/herald-php/src/autoload.php';
 *
 * With Composer, use vendor/autoload.php instead (composer.json maps Herald\ to src/). Loading both
 * is harmless: whichever autoloader runs first finds the class.
 */
spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Herald\\', 7) !== 0) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, 7)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
