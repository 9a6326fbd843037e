<?php

declare(strict_types=1);

namespace Herald\Tests\Support;

/** Runs a command to completion and returns its exit code and output (for tools the tests drive: composer, node, php). */
final class Process
{
    /**
     * @param list<string> $command The program and its arguments (no shell).
     * @param array<string, string> $env The whole environment of the child (PATH is added when missing).
     * @param string|null $stdin Written to the child's standard input, then closed.
     * @return array{0: int, 1: string, 2: string} exit code, stdout, stderr
     */
    public static function run(array $command, ?string $cwd = null, array $env = [], ?string $stdin = null): array
    {
        $env += ['PATH' => (string) getenv('PATH')];
        $process = proc_open($command, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, $cwd, $env);
        if (!\is_resource($process)) {
            throw new \RuntimeException('cannot start ' . implode(' ', $command));
        }
        fwrite($pipes[0], $stdin ?? '');
        fclose($pipes[0]);
        // Read stderr and stdout together, so a child that fills one pipe never blocks on it.
        $out = '';
        $err = '';
        stream_set_blocking($pipes[1], false);
        stream_set_blocking($pipes[2], false);
        while (!feof($pipes[1]) || !feof($pipes[2])) {
            $read = array_values(array_filter([$pipes[1], $pipes[2]], static fn ($p) => !feof($p)));
            $write = null;
            $except = null;
            if (stream_select($read, $write, $except, 60) === 0) {
                break;
            }
            foreach ($read as $pipe) {
                $chunk = (string) fread($pipe, 65536);
                if ($pipe === $pipes[1]) {
                    $out .= $chunk;
                } else {
                    $err .= $chunk;
                }
            }
        }
        fclose($pipes[1]);
        fclose($pipes[2]);
        return [proc_close($process), $out, $err];
    }

    /** Deletes a directory tree this test created. */
    public static function removeTree(string $dir): void
    {
        if (!is_dir($dir) || is_link($dir)) {
            return;
        }
        $it = new \RecursiveIteratorIterator(
            new \RecursiveDirectoryIterator($dir, \FilesystemIterator::SKIP_DOTS),
            \RecursiveIteratorIterator::CHILD_FIRST,
        );
        foreach ($it as $file) {
            $path = $file->getPathname();
            $file->isDir() && !$file->isLink() ? rmdir($path) : unlink($path);
        }
        rmdir($dir);
    }
}
