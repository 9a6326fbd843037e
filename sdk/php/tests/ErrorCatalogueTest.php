<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Http\Response;
use Herald\Internal\Errors;
use PHPUnit\Framework\TestCase;

/**
 * docs/errors.md, section "## PHP SDK", is the one catalogue of what the PHP SDK throws: every exception
 * class of src/Exception with its parent and codes, and the SDK's own codes. This test fails when a class
 * exists that the page does not list or the page lists one that does not exist, when a class throws a
 * code its row does not name, and when a gateway HTTP error code maps to a class whose row lacks it.
 */
final class ErrorCatalogueTest extends TestCase
{
    private const DOC = __DIR__ . '/../../../docs/errors.md';
    private const SRC = __DIR__ . '/../src';

    /** @return list<string> the lines of the `## <title>` section, up to the next heading of level 1 or 2 */
    private static function section(string $title): array
    {
        $lines = preg_split('/\R/', (string) file_get_contents(self::DOC)) ?: [];
        $start = array_search("## $title", $lines, true);
        self::assertIsInt($start, "docs/errors.md has no \"## $title\" section");
        $section = [];
        foreach (\array_slice($lines, $start + 1) as $line) {
            if (preg_match('/^#{1,2} /', $line) === 1) {
                break;
            }
            $section[] = $line;
        }
        return $section;
    }

    /**
     * The cells of the table rows of a section whose first cell matches $first.
     *
     * @param list<string> $lines
     * @return list<list<string>>
     */
    private static function rows(array $lines, string $first): array
    {
        $rows = [];
        foreach ($lines as $line) {
            if (!str_starts_with(ltrim($line), '|')) {
                continue;
            }
            $cells = array_map('trim', explode('|', trim(trim($line), '|')));
            if (preg_match($first, $cells[0]) === 1) {
                $rows[] = $cells;
            }
        }
        return $rows;
    }

    /** @return list<string> the backticked words of a cell */
    private static function codes(string $cell): array
    {
        preg_match_all('/`([^`]+)`/', $cell, $m);
        return $m[1];
    }

    /** @return array<string, array{parent: string, codes: list<string>}> the PHP SDK table, by class name */
    private static function documented(): array
    {
        $classes = [];
        foreach (self::rows(self::section('PHP SDK'), '/^`Herald\\\\Exception\\\\\w+`$/') as $cells) {
            $class = trim($cells[0], '`');
            self::assertArrayNotHasKey($class, $classes, "$class has two rows");
            $classes[$class] = ['parent' => trim($cells[1], '`\\'), 'codes' => self::codes($cells[3] ?? '')];
        }
        return $classes;
    }

    /** @return list<string> every class defined in src/Exception */
    private static function exceptionClasses(): array
    {
        $classes = [];
        foreach (glob(self::SRC . '/Exception/*.php') ?: [] as $file) {
            $class = 'Herald\\Exception\\' . basename($file, '.php');
            self::assertTrue(class_exists($class), "$file defines $class");
            $classes[] = $class;
        }
        sort($classes);
        return $classes;
    }

    public function testTheDocsListExactlyTheExceptionClassesThatExist(): void
    {
        $documented = array_keys(self::documented());
        sort($documented);
        $classes = self::exceptionClasses();
        self::assertSame([], array_values(array_diff($classes, $documented)), 'classes of src/Exception missing from "## PHP SDK" in docs/errors.md');
        self::assertSame([], array_values(array_diff($documented, $classes)), 'classes listed in "## PHP SDK" of docs/errors.md that do not exist');
        self::assertGreaterThanOrEqual(10, \count($classes));
    }

    public function testEachRowNamesTheParentAndCodesThatExist(): void
    {
        $gateway = array_map(static fn (array $c): string => trim($c[0], '`'), self::rows(self::section('Error codes'), '/^`[a-z_]+`$/'));
        $own = array_map(static fn (array $c): string => trim($c[0], '`'), self::rows(self::section('PHP SDK'), '/^`[a-z_<>]+`$/'));
        self::assertContains('no_such_client', $gateway);
        self::assertContains('transport_error', $own);

        $used = [];
        foreach (self::documented() as $class => $row) {
            self::assertSame(get_parent_class($class), $row['parent'], "the parent of $class");
            self::assertNotSame([], $row['codes'], "$class lists its codes");
            foreach ($row['codes'] as $code) {
                $known = \in_array($code, $gateway, true) || \in_array($code, $own, true);
                self::assertTrue($known, "$class lists `$code`, which is neither a gateway code nor one of the SDK's own");
                $used[] = $code;
            }
        }
        self::assertSame([], array_values(array_diff($own, $used)), 'SDK codes that no class row names');
    }

    public function testEveryCodeTheSourceThrowsIsInItsClassRow(): void
    {
        $documented = self::documented();
        $thrown = self::thrownCodes();
        self::assertNotSame([], $thrown);
        foreach ($thrown as [$class, $code, $where]) {
            self::assertArrayHasKey($class, $documented, $where);
            self::assertContains($code, $documented[$class]['codes'], "$where throws $class with `$code`, which its row in docs/errors.md does not name");
        }
    }

    public function testEveryGatewayHttpErrorMapsToAClassWhoseRowNamesIt(): void
    {
        $documented = self::documented();
        foreach (self::rows(self::section('Error codes'), '/^`[a-z_]+`$/') as $cells) {
            if (!ctype_digit($cells[2])) {
                continue; // a WebSocket-only code: the SDK never receives it
            }
            $code = trim($cells[0], '`');
            $body = json_encode(['error' => ['code' => $code, 'message' => 'm']], JSON_THROW_ON_ERROR);
            $e = Errors::fromResponse(new Response((int) $cells[2], [], $body), 'POST', '/api/publish', null);
            self::assertSame($code, $e->getErrorCode());
            self::assertContains($code, $documented[$e::class]['codes'], "HTTP {$cells[2]} `$code` is thrown as " . $e::class . ', whose row does not name it');
        }
        // The codes Errors gives an answer without a Herald error body.
        $bodiless = [
            400 => 'invalid_body',
            401 => 'unauthorized',
            404 => 'not_found',
            413 => 'body_too_large',
            502 => 'service_unavailable',
            500 => 'http_<status>',
        ];
        foreach ($bodiless as $status => $code) {
            $e = Errors::fromResponse(new Response($status, [], '<html>proxy</html>'), 'GET', '/api/online', null);
            self::assertContains($code, $documented[$e::class]['codes'], "HTTP $status without a body");
        }
        $timeout = json_encode(['error' => ['code' => 'engine_timeout', 'message' => 'm']], JSON_THROW_ON_ERROR);
        $e = Errors::fromResponse(new Response(504, [], $timeout), 'POST', '/api/publish', null);
        self::assertContains('engine_timeout', $documented[$e::class]['codes']);
    }

    /**
     * Every `new <Exception class>(message, '<code>', ...)` in src/: the class, the literal code and where.
     *
     * @return list<array{0: string, 1: string, 2: string}>
     */
    private static function thrownCodes(): array
    {
        $found = [];
        $files = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(self::SRC, \FilesystemIterator::SKIP_DOTS));
        foreach ($files as $file) {
            $tokens = array_values(array_filter(
                \PhpToken::tokenize((string) file_get_contents($file->getPathname())),
                static fn (\PhpToken $t): bool => !$t->is([T_WHITESPACE, T_COMMENT, T_DOC_COMMENT]),
            ));
            $uses = self::imports($tokens);
            foreach ($tokens as $i => $token) {
                if (!$token->is(T_NEW) || !isset($tokens[$i + 1])) {
                    continue;
                }
                $class = $uses[$tokens[$i + 1]->text] ?? ltrim($tokens[$i + 1]->text, '\\');
                if (!str_starts_with($class, 'Herald\\Exception\\')) {
                    continue;
                }
                // The code is the second argument; a code computed at run time (Errors' mapping, the
                // script errors of RedisPublisher) is checked by the tests above instead.
                foreach (self::secondArgumentLiterals($tokens, $i + 2) as $code) {
                    $found[] = [$class, $code, basename($file->getPathname()) . ':' . $token->line];
                }
            }
        }
        return $found;
    }

    /**
     * The `use` imports of a file: short name => class.
     *
     * @param list<\PhpToken> $tokens
     * @return array<string, string>
     */
    private static function imports(array $tokens): array
    {
        $uses = [];
        foreach ($tokens as $i => $token) {
            if ($token->is(T_USE) && isset($tokens[$i + 1]) && $tokens[$i + 1]->is(T_NAME_QUALIFIED)) {
                $class = $tokens[$i + 1]->text;
                $uses[substr((string) strrchr('\\' . $class, '\\'), 1)] = $class;
            }
        }
        return $uses;
    }

    /**
     * The string literals of the second argument of the call whose `(` is at $open (`'timeout'` and
     * `'transport_error'` in `$timeout ? 'timeout' : 'transport_error'`).
     *
     * @param list<\PhpToken> $tokens
     * @return list<string>
     */
    private static function secondArgumentLiterals(array $tokens, int $open): array
    {
        if (($tokens[$open]->text ?? '') !== '(') {
            return [];
        }
        $literals = [];
        $depth = 0;
        $argument = 0;
        for ($i = $open; isset($tokens[$i]) && $argument < 2; $i++) {
            $text = $tokens[$i]->text;
            $depth += \in_array($text, ['(', '[', '{'], true) ? 1 : (\in_array($text, [')', ']', '}'], true) ? -1 : 0);
            if ($depth === 0) {
                break;
            }
            if ($depth === 1 && $text === ',') {
                $argument++;
            } elseif ($argument === 1 && $tokens[$i]->is(T_CONSTANT_ENCAPSED_STRING)) {
                $literals[] = substr($text, 1, -1);
            }
        }
        return $literals;
    }

    public function testTheRedisScriptErrorsAreValidationFailedCodes(): void
    {
        $documented = self::documented();
        $scriptErrors = (new \ReflectionClassConstant(\Herald\RedisPublisher::class, 'SCRIPT_ERRORS'))->getValue();
        self::assertIsArray($scriptErrors);
        foreach ($scriptErrors as $scriptCode => [$code]) {
            self::assertContains($code, $documented[\Herald\Exception\ValidationFailed::class]['codes'], "the script's $scriptCode");
        }
    }
}
