<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\Exception\HeraldException;
use Herald\Version;
use PHPUnit\Framework\TestCase;

/** The package's shape: composer.json, PSR-4 layout, strict types, the non-Composer autoloader. */
final class PackageTest extends TestCase
{
    private const ROOT = __DIR__ . '/..';

    /** @return list<string> every PHP file of src/, relative to src/ */
    private static function sources(): array
    {
        $files = [];
        $it = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(self::ROOT . '/src', \FilesystemIterator::SKIP_DOTS));
        foreach ($it as $file) {
            if ($file->getExtension() === 'php') {
                $files[] = substr($file->getPathname(), \strlen(self::ROOT . '/src/'));
            }
        }
        sort($files);
        return $files;
    }

    public function testComposerJson(): void
    {
        $composer = json_decode((string) file_get_contents(self::ROOT . '/composer.json'), true, 512, JSON_THROW_ON_ERROR);
        self::assertSame('herald/herald-php', $composer['name']);
        self::assertSame(['Herald\\' => 'src/'], $composer['autoload']['psr-4']);
        self::assertSame(['php' => '>=8.1', 'ext-json' => '*', 'ext-curl' => '*'], $composer['require']);
        self::assertArrayHasKey('ext-redis', $composer['suggest']);
        self::assertArrayNotHasKey('require-dev', $composer, 'nothing to download');
    }

    public function testTheVersionIsWrittenInOnePlace(): void
    {
        self::assertMatchesRegularExpression('/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/D', Version::VERSION);
        self::assertSame(Version::VERSION, Client::VERSION);
        $composer = json_decode((string) file_get_contents(self::ROOT . '/composer.json'), true, 512, JSON_THROW_ON_ERROR);
        // Composer takes the version from the VCS tag; one written in composer.json must not disagree.
        self::assertSame(Version::VERSION, $composer['version'] ?? Version::VERSION);
        foreach (self::sources() as $file) {
            if ($file === 'Version.php') {
                continue;
            }
            $code = (string) file_get_contents(self::ROOT . '/src/' . $file);
            self::assertDoesNotMatchRegularExpression('/[\'"]v?\d+\.\d+\.\d+[\'"]/', $code, "$file writes a version of its own: use Herald\\Version::VERSION");
        }
    }

    public function testEveryFileDeclaresStrictTypesAndHoldsTheClassItsPathNames(): void
    {
        $files = self::sources();
        self::assertContains('Client.php', $files);
        foreach ($files as $file) {
            $code = (string) file_get_contents(self::ROOT . '/src/' . $file);
            self::assertMatchesRegularExpression('/^<\?php\s+declare\(strict_types=1\);/', $code, $file);
            if ($file === 'autoload.php') {
                continue;
            }
            $class = 'Herald\\' . str_replace('/', '\\', substr($file, 0, -4));
            self::assertTrue(class_exists($class) || interface_exists($class) || trait_exists($class), "$file defines $class");
        }
    }

    public function testEveryClassIsFinalButTheExceptionsTheSdkExtends(): void
    {
        $classes = [];
        foreach (self::sources() as $file) {
            if ($file !== 'autoload.php') {
                $classes[] = new \ReflectionClass('Herald\\' . str_replace('/', '\\', substr($file, 0, -4)));
            }
        }
        $parents = [];
        foreach ($classes as $class) {
            $parent = $class->getParentClass();
            if ($parent !== false) {
                $parents[$parent->getName()] = true;
            }
        }
        $open = [];
        foreach ($classes as $class) {
            if ($class->isInterface() || $class->isTrait() || $class->isFinal()) {
                continue;
            }
            // A base class meant to be extended: an exception that SDK exceptions extend (catch it for all).
            if (!$class->isSubclassOf(\Throwable::class) || !isset($parents[$class->getName()])) {
                $open[] = $class->getName();
            }
        }
        self::assertSame([], $open, 'classes that are neither final nor an exception base class');
        self::assertFalse((new \ReflectionClass(HeraldException::class))->isFinal(), "the base class stays open");
    }

    public function testTheAutoloaderWorksInAFreshProcess(): void
    {
        $script = 'require ' . var_export(realpath(self::ROOT . '/src/autoload.php'), true) . ';'
            . ' echo Herald\Version::VERSION, " ", (new Herald\TokenIssuer(str_repeat("s", 32)))->forUser(1) !== "" ? "ok" : "no";';
        $out = shell_exec(escapeshellarg(PHP_BINARY) . ' -d error_reporting=-1 -d display_errors=1 -r ' . escapeshellarg($script) . ' 2>&1');
        self::assertMatchesRegularExpression('/^\d+\.\d+\.\d+ ok$/', (string) $out);
    }
}
