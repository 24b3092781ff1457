"""How calls to the store are framed (the Redis protocol's arrays of bulk strings)."""

from __future__ import annotations

import hashlib

from corral.runtime import storescripts


def test_a_command_is_an_array_of_bulk_strings_of_utf8_bytes() -> None:
    framed = storescripts.command("LRANGE", "sessions:é", 0, -1)

    assert framed == b"*4\r\n$6\r\nLRANGE\r\n$11\r\nsessions:\xc3\xa9\r\n$1\r\n0\r\n$2\r\n-1\r\n"


def test_a_script_call_names_the_script_by_its_sha1_and_counts_its_keys() -> None:
    call = storescripts.Call.of(storescripts.SETTLE, ["k1", "k2"], [7, b"x"])

    sha = hashlib.sha1(storescripts.SETTLE.body).hexdigest()
    assert call.evalsha() == (
        b"*7\r\n$7\r\nEVALSHA\r\n$40\r\n" + sha.encode() + b"\r\n$1\r\n2\r\n"
        b"$2\r\nk1\r\n$2\r\nk2\r\n$1\r\n7\r\n$1\r\nx\r\n"
    )


def test_arguments_framed_once_are_the_same_bytes_as_framed_each_time() -> None:
    once = storescripts.Bulks.of("a", 10)
    assert once.count == 2
    assert once.data + storescripts.bulk("b") == storescripts.Bulks.of("a", 10, "b").data


def test_loading_a_script_sends_its_body() -> None:
    assert storescripts.ADMIT.load() == storescripts.command(
        "SCRIPT", "LOAD", storescripts.ADMIT.body
    )


def test_a_call_framed_by_its_caller_counts_the_scripts_fixed_arity() -> None:
    keys = storescripts.Bulks.of(*(f"k{i}" for i in range(7)))
    args = storescripts.Bulks.of(*range(6))

    call = storescripts.Call.framed(storescripts.SETTLE, keys.data + args.data)

    assert (call.keys, call.count) == (keys.count, keys.count + args.count)
    assert call.evalsha().startswith(b"*16\r\n$7\r\nEVALSHA\r\n")
