<?php
/*
 * PHP over libsessionkeeper through PHP's FFI: proof that the C ABI serves
 * another real language, and that a session crosses between languages.
 *
 *   php -d ffi.enable=1 tests/php/interop.php <libsessionkeeper.so> <sessionkeeper.h> <url> <rust_id>
 *
 * <rust_id> is a session written by the engine directly (bindings/c/examples/
 * interop_peer.rs write). This script reads it, checks every value, changes
 * it, saves it, and creates a session of its own, whose id is the only line
 * printed on stdout. `interop_peer verify` then checks both from Rust.
 * Progress and the "N passed, M failed" summary go to stderr.
 */

declare(strict_types=1);

if ($argc !== 5) {
    fwrite(STDERR, "usage: php -d ffi.enable=1 {$argv[0]} <lib> <header> <url> <rust_id>\n");
    exit(2);
}
[, $libPath, $headerPath, $url, $rustId] = $argv;

if (!extension_loaded('ffi')) {
    fwrite(STDERR, "php interop: PHP's FFI extension is missing\nphp interop: 0 passed, 1 failed\n");
    exit(1);
}

/**
 * FFI::cdef() takes declarations only: drop the preprocessor lines and the
 * C++ `extern "C"` block markers from the generated header.
 */
function declarations(string $header): string
{
    $out = [];
    $inCplusplus = false;
    foreach (explode("\n", $header) as $line) {
        if (preg_match('/^\s*#\s*(ifdef\s+__cplusplus|if\s+defined\(__cplusplus\))/', $line)) {
            $inCplusplus = true;
            continue;
        }
        if ($inCplusplus) {
            if (preg_match('/^\s*#\s*endif/', $line)) {
                $inCplusplus = false;
            }
            continue;
        }
        if (!preg_match('/^\s*#/', $line)) {
            $out[] = $line;
        }
    }
    return implode("\n", $out);
}

final class Check
{
    public static int $passed = 0;
    public static int $failed = 0;

    public static function that(bool $cond, string $what): void
    {
        if ($cond) {
            self::$passed++;
        } else {
            self::$failed++;
            $line = debug_backtrace()[0]['line'] ?? 0;
            fwrite(STDERR, "FAIL line $line: $what\n");
        }
    }
}

/** The C library with PHP-shaped errors: a failed call throws. */
final class Sessionkeeper
{
    public FFI $ffi;

    public function __construct(string $lib, string $header)
    {
        $this->ffi = FFI::cdef(declarations(file_get_contents($header)), $lib);
    }

    /** Calls a function whose last parameter is `sessionkeeper_error **err`. */
    public function call(string $fn, ...$args): void
    {
        $err = $this->ffi->new('sessionkeeper_error*');
        $args[] = FFI::addr($err);
        $code = $this->ffi->$fn(...$args);
        if ($code !== $this->ffi->SESSIONKEEPER_OK) {
            $message = $this->ffi->sessionkeeper_error_message($err);
            $this->ffi->sessionkeeper_error_free($err);
            throw new SessionkeeperError($message, $code);
        }
        Check::that(FFI::isNull($err), "$fn left no error object on success");
    }

    /** A NUL-terminated copy of a PHP string, alive as long as the returned CData. */
    public function cString(string $s): FFI\CData
    {
        $buf = $this->ffi->new('char[' . (strlen($s) + 1) . ']');
        FFI::memcpy($buf, $s, strlen($s));
        return $buf;
    }

    public function getString($session, string $key): ?string
    {
        $out = $this->ffi->new('char*');
        $this->call('sessionkeeper_session_get_string', $session, $key, FFI::addr($out));
        if (FFI::isNull($out)) {
            return null;
        }
        $value = FFI::string($out);
        $this->ffi->sessionkeeper_string_free($out);
        return $value;
    }

    public function getInt($session, string $key): ?int
    {
        $value = $this->ffi->new('int64_t');
        $found = $this->ffi->new('bool');
        $this->call('sessionkeeper_session_get_int', $session, $key, FFI::addr($value), FFI::addr($found));
        return $found->cdata ? $value->cdata : null;
    }

    public function type($session, string $key): int
    {
        $type = $this->ffi->new('sessionkeeper_type');
        $this->call('sessionkeeper_session_type', $session, $key, FFI::addr($type));
        return $type->cdata;
    }
}

final class SessionkeeperError extends RuntimeException
{
}

$sk = new Sessionkeeper($libPath, $headerPath);
$ffi = $sk->ffi;

try {
    Check::that(preg_match('/^\d+\.\d+\.\d+/', $ffi->sessionkeeper_version()) === 1, 'version string');

    // Errors come back as codes and messages, not crashes.
    $store = $ffi->new('sessionkeeper_store*');
    try {
        $sk->call('sessionkeeper_store_open', 'http://nowhere', null, null, 0, FFI::addr($store));
        Check::that(false, 'a bad URL was accepted');
    } catch (SessionkeeperError $e) {
        Check::that($e->getCode() === $ffi->SESSIONKEEPER_CONFIG, 'bad URL is SESSIONKEEPER_CONFIG');
        Check::that($ffi->sessionkeeper_code_name($e->getCode()) === 'config', 'code name');
        Check::that(str_contains($e->getMessage(), 'http'), 'message names the scheme: ' . $e->getMessage());
        Check::that(FFI::isNull($store), 'no store on failure');
    }
    Check::that(!$ffi->sessionkeeper_id_is_valid('short'), 'short id is invalid');
    Check::that($ffi->sessionkeeper_id_is_valid($rustId), 'the Rust id is valid');

    // Open with options passed as two C string arrays.
    $names = $ffi->new('const char*[2]');
    $values = $ffi->new('const char*[2]');
    $keep = [$sk->cString('key_prefix'), $sk->cString('interop:'), $sk->cString('command_timeout'), $sk->cString('2s')];
    $names[0] = FFI::cast('const char*', $keep[0]);
    $values[0] = FFI::cast('const char*', $keep[1]);
    $names[1] = FFI::cast('const char*', $keep[2]);
    $values[1] = FFI::cast('const char*', $keep[3]);
    $sk->call('sessionkeeper_store_open', $url, $names, $values, 2, FFI::addr($store));

    // Read the session Rust wrote.
    $session = $ffi->new('sessionkeeper_session*');
    $sk->call('sessionkeeper_store_load', $store, $rustId, FFI::addr($session));
    Check::that(!FFI::isNull($session), 'the Rust session loads');
    Check::that($ffi->sessionkeeper_session_len($session) === 10, 'it has 10 keys');
    Check::that($sk->getString($session, 'user') === 'alice', 'user is alice');
    Check::that($sk->getInt($session, 'visits') === 41, 'visits is 41');
    Check::that($sk->getString($session, 'unicode') === "h\u{e9}llo \u{2713}", 'UTF-8 string survives');
    Check::that($sk->getString($session, 'missing') === null, 'a missing key is null');
    $types = [
        'ratio' => 'FLOAT', 'admin' => 'BOOL', 'nothing' => 'NIL', 'tags' => 'ARRAY', 'prefs' => 'MAP',
        'raw' => 'BYTES', 'seen_at' => 'TIMESTAMP', 'user' => 'STRING', 'visits' => 'INT', 'missing' => 'MISSING',
    ];
    foreach ($types as $key => $type) {
        Check::that($sk->type($session, $key) === $ffi->{"SESSIONKEEPER_TYPE_$type"}, "$key is $type");
    }
    try {
        $sk->getInt($session, 'user');
        Check::that(false, 'get_int on a string succeeded');
    } catch (SessionkeeperError $e) {
        Check::that($e->getCode() === $ffi->SESSIONKEEPER_WRONG_TYPE, 'get_int on a string is WRONG_TYPE');
    }
    $meta = $ffi->new('sessionkeeper_meta');
    Check::that($ffi->sessionkeeper_session_meta($session, FFI::addr($meta)), 'meta of a loaded session');
    Check::that(abs($meta->created_at_ms - (int)(microtime(true) * 1000)) < 600000, 'created just now');

    // The whole session as MessagePack: a 10-entry map holding the values.
    $bytes = $ffi->new('uint8_t*');
    $len = $ffi->new('size_t');
    $sk->call('sessionkeeper_session_get_msgpack', $session, FFI::addr($bytes), FFI::addr($len));
    $packed = FFI::string($bytes, $len->cdata);
    $ffi->sessionkeeper_bytes_free($bytes, $len->cdata);
    Check::that(ord($packed[0]) === 0x8a, 'MessagePack fixmap of 10 entries');
    Check::that(str_contains($packed, "\xa5alice") && str_contains($packed, "\xc4\x03\x00\xff\x0a"), 'MessagePack holds the values');

    // Change it and save: only the changed keys are written.
    $sk->call('sessionkeeper_session_set_int', $session, 'visits', 42);
    $sk->call('sessionkeeper_session_set_string', $session, 'written_by', 'php');
    $removed = $ffi->new('bool');
    $sk->call('sessionkeeper_session_remove', $session, 'nothing', FFI::addr($removed));
    Check::that($removed->cdata, 'nothing was removed');
    $outcome = $ffi->new('sessionkeeper_save_outcome');
    $sk->call('sessionkeeper_store_save', $store, $rustId, $session, FFI::addr($outcome));
    Check::that($outcome->cdata === $ffi->SESSIONKEEPER_SAVE_WRITTEN, 'save wrote the changes');
    $sk->call('sessionkeeper_store_save', $store, $rustId, $session, FFI::addr($outcome));
    Check::that($outcome->cdata === $ffi->SESSIONKEEPER_SAVE_UNCHANGED, 'a second save sends nothing');
    $ffi->sessionkeeper_session_free($session);

    // Create a session of PHP's own.
    $mine = $ffi->sessionkeeper_session_new();
    $sk->call('sessionkeeper_session_set_string', $mine, 'from', 'php');
    $sk->call('sessionkeeper_session_set_int', $mine, 'n', 7);
    $sk->call('sessionkeeper_session_set_string', $mine, 'unicode', "h\u{e9}llo \u{2713}");
    $id = $ffi->new('char*');
    $sk->call('sessionkeeper_store_create', $store, $mine, FFI::addr($id));
    $phpId = FFI::string($id);
    $ffi->sessionkeeper_string_free($id);
    $ffi->sessionkeeper_session_free($mine);
    Check::that($ffi->sessionkeeper_id_is_valid($phpId), 'created id is valid');
    $exists = $ffi->new('bool');
    $sk->call('sessionkeeper_store_exists', $store, $phpId, FFI::addr($exists));
    Check::that($exists->cdata, 'created session exists');

    $ffi->sessionkeeper_store_free($store);
    echo $phpId, "\n";
} catch (Throwable $e) {
    Check::that(false, get_class($e) . ': ' . $e->getMessage());
}

fwrite(STDERR, sprintf("php interop: %d passed, %d failed\n", Check::$passed, Check::$failed));
exit(Check::$failed === 0 ? 0 : 1);
