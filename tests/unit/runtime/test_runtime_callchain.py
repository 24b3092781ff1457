"""The agent call chain: cycles and depth are refused on both sides of a call."""

from __future__ import annotations

import pytest

from corral.runtime import callchain


def test_the_first_agent_starts_the_chain_and_sends_itself() -> None:
    chain = callchain.parse(None, "shop/a", 3)

    chain.check_incoming()
    chain.check_call("shop/b")
    assert chain.header() == "shop/a"


def test_a_call_back_to_an_agent_in_the_chain_is_a_cycle() -> None:
    chain = callchain.parse("shop/a", "shop/b", 3)

    with pytest.raises(callchain.Refused, match="shop/a -> shop/b -> shop/a") as refused:
        chain.check_call("shop/a")
    assert refused.value.code == "call_cycle"


def test_a_call_deeper_than_the_limit_is_refused_by_the_caller() -> None:
    chain = callchain.parse("shop/a,shop/b", "shop/c", 3)

    chain.check_incoming()
    with pytest.raises(callchain.Refused, match="deeper than maxCallDepth 3") as refused:
        chain.check_call("shop/d")
    assert refused.value.code == "call_depth_exceeded"


def test_the_callee_refuses_a_chain_that_ignores_the_rules() -> None:
    with pytest.raises(callchain.Refused, match="cycle"):
        callchain.parse("shop/a,shop/b", "shop/a", 5).check_incoming()
    with pytest.raises(callchain.Refused, match="deeper"):
        callchain.parse("shop/a,shop/b,shop/c", "shop/d", 3).check_incoming()


@pytest.mark.parametrize("header", ["a", "shop/A", "shop/a,,shop/b", ",".join(["n/x"] * 33)])
def test_a_malformed_header_is_invalid(header: str) -> None:
    with pytest.raises(callchain.InvalidChain):
        callchain.parse(header, "shop/a", 3)
