<?php

declare(strict_types=1);

// The SDK through its own autoloader (as an application without Composer would load it), plus the
// test support classes.
require __DIR__ . '/../src/autoload.php';

spl_autoload_register(static function (string $class): void {
    $prefix = 'Herald\\Tests\\';
    if (strncmp($class, $prefix, \strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, \strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
