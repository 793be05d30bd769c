"""SingleFlight: one leader per key, followers wait for it (a future made only for them)."""

from __future__ import annotations

import asyncio

from acc.core.flow.coalesce import SingleFlight


async def test_followers_share_one_waiter_released_when_the_leader_is_done() -> None:
    flight = SingleFlight()
    assert flight.join("k") is None  # the leader
    first = flight.join("k")
    second = flight.join("k")
    assert first is not None
    assert first is second
    assert not first.done()
    assert flight.join("other") is None  # another key has its own leader
    flight.done("k")
    await asyncio.wait_for(first, timeout=5)
    assert flight.completions == 1
    assert flight.join("k") is None  # the next one leads again


async def test_a_leader_without_followers_leaves_nothing_behind() -> None:
    flight = SingleFlight()
    assert flight.join("k") is None
    flight.done("k")
    assert len(flight) == 0
    assert flight.join("k") is None


def test_a_leader_of_another_loop_is_not_waited_for() -> None:
    flight = SingleFlight()

    async def lead() -> None:
        assert flight.join("k") is None  # left in flight when its loop ends

    async def arrive(key: str = "k") -> asyncio.Future[None] | None:
        return flight.join(key)

    asyncio.run(lead())
    assert asyncio.run(arrive()) is None  # a leader in this loop, not a follower of the old one

    async def wait_on_old() -> None:
        waiter = flight.join("j")
        assert waiter is None
        follower = flight.join("j")
        assert follower is not None

    asyncio.run(wait_on_old())
    assert asyncio.run(arrive("j")) is None  # the old loop's waiter is not this loop's
