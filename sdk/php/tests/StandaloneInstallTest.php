<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\RedisPublisher;
use Herald\Tests\Support\Env;
use Herald\Tests\Support\GatewayTestCase;
use Herald\Tests\Support\Process;
use Herald\Version;

/**
 * The SDK installed by Composer on its own, far from this repository: the package Composer would
 * distribute (`composer archive`, which applies composer.json's archive excludes and .gitattributes'
 * export-ignore) is installed into a fresh project in the temporary directory, offline (no Packagist), and
 * a script of that project publishes through RedisPublisher with its default script and through the Client.
 *
 * Needs the `composer` command (Debian: apt install composer; scripts/test.sh installs it).
 */
final class StandaloneInstallTest extends GatewayTestCase
{
    private const PACKAGE = __DIR__ . '/..';

    private string $work = '';

    protected function setUp(): void
    {
        parent::setUp();
        $this->work = sys_get_temp_dir() . '/herald-php-standalone-' . bin2hex(random_bytes(6));
        mkdir($this->work . '/home', 0700, true);
    }

    protected function tearDown(): void
    {
        Process::removeTree($this->work);
        parent::tearDown();
    }

    /**
     * Runs composer with a throw-away home and cache, the network disabled and no Packagist.
     *
     * @param list<string> $args
     * @return array{0: int, 1: string, 2: string}
     */
    private function composer(array $args, string $cwd): array
    {
        $composer = getenv('HERALD_TEST_COMPOSER') ?: 'composer';
        return Process::run([$composer, '--no-interaction', '--no-ansi', ...$args], $cwd, [
            'HOME' => $this->work . '/home',
            'COMPOSER_HOME' => $this->work . '/home/composer',
            'COMPOSER_CACHE_DIR' => $this->work . '/home/cache',
            'COMPOSER_DISABLE_NETWORK' => '1',
            'COMPOSER_ALLOW_SUPERUSER' => '1',
        ]);
    }

    public function testComposerJsonIsValid(): void
    {
        [$code, $out, $err] = $this->composer(['validate', '--strict', '--no-check-publish'], self::PACKAGE);
        self::assertSame(0, $code, "composer validate --strict: $out $err (is composer installed? apt install composer)");
    }

    public function testTheDistributedPackageWorksWithoutTheRepository(): void
    {
        // 1. The package as Composer would distribute it.
        [$code, $out, $err] = $this->composer(['archive', '--format=tar', '--dir=' . $this->work, '--file=herald-php'], self::PACKAGE);
        self::assertSame(0, $code, "composer archive: $out $err (is composer installed? apt install composer)");
        $package = $this->work . '/package';
        (new \PharData($this->work . '/herald-php.tar'))->extractTo($package);
        self::assertFileExists($package . '/resources/publish.lua');
        self::assertFileExists($package . '/src/autoload.php');
        foreach (['tests', 'phpunit.xml.dist', 'phpcs.xml.dist', 'phpmd.xml.dist'] as $devOnly) {
            self::assertFileDoesNotExist($package . '/' . $devOnly, 'development files stay out of the package');
        }

        // 2. A fresh project that requires it, installed offline from a path repository (copied, not linked).
        $project = $this->work . '/project';
        mkdir($project);
        file_put_contents($project . '/composer.json', json_encode([
            'name' => 'acme/app',
            'require' => ['herald/herald-php' => '*'],
            'repositories' => [
                ['type' => 'path', 'url' => $package, 'options' => ['symlink' => false, 'versions' => ['herald/herald-php' => Version::VERSION]]],
                ['packagist.org' => false],
            ],
        ], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES));
        [$code, $out, $err] = $this->composer(['install', '--no-progress'], $project);
        self::assertSame(0, $code, "composer install: $out $err");
        self::assertFileExists($project . '/vendor/herald/herald-php/resources/publish.lua');

        // 3. The project publishes through Redis (the SDK's own copy of the script) and over HTTP.
        $ch = $this->name('standalone');
        $ws = $this->connect(null, [$ch], Env::redisGatewayWsUrl());
        file_put_contents($project . '/app.php', <<<'PHP'
            <?php
            declare(strict_types=1);
            require __DIR__ . '/vendor/autoload.php';
            [, $gatewayUrl, $apiKey, $redisUrl, $prefix, $channel] = $argv;
            $publisher = Herald\RedisPublisher::fromUrl($redisUrl, new Herald\RedisPublisherOptions(prefix: $prefix));
            $viaRedis = $publisher->publish($channel, 'standalone', ['via' => 'redis']);
            $viaHttp = (new Herald\Client($gatewayUrl, $apiKey))->publish($channel, 'standalone', ['via' => 'http']);
            echo json_encode([
                'script' => realpath(Herald\RedisPublisher::defaultScriptPath()),
                'sha' => $publisher->scriptSha(),
                'client' => (new ReflectionClass(Herald\Client::class))->getFileName(),
                'seqs' => [$viaRedis->first()->seq, $viaHttp->first()->seq],
                'version' => Herald\Version::VERSION,
            ]);
            PHP);
        [$code, $out, $err] = Process::run(
            [PHP_BINARY, 'app.php', Env::redisGatewayUrl(), Env::apiKey(), Env::redisUrl(), Env::redisPrefix(), $ch],
            $project,
        );
        self::assertSame(0, $code, "app.php: $out $err");
        $result = json_decode($out, true, 512, JSON_THROW_ON_ERROR);

        $installed = realpath($project . '/vendor/herald/herald-php');
        self::assertSame($installed . '/resources/publish.lua', $result['script']);
        self::assertSame($installed . '/src/Client.php', $result['client']);
        self::assertSame(sha1_file(RedisPublisher::defaultScriptPath()), $result['sha']);
        self::assertSame([1, 2], $result['seqs']);
        self::assertSame(Version::VERSION, $result['version']);
        $installedJson = json_decode((string) file_get_contents($project . '/vendor/composer/installed.json'), true, 512, JSON_THROW_ON_ERROR);
        self::assertSame(Version::VERSION, $installedJson['packages'][0]['version']);
        self::assertSame(['type' => 'standalone', 'channel' => $ch, 'payload' => ['via' => 'redis'], 'seq' => 1], $ws->waitMessage($ch));
        self::assertSame(['type' => 'standalone', 'channel' => $ch, 'payload' => ['via' => 'http'], 'seq' => 2], $ws->waitMessage($ch));
    }
}
