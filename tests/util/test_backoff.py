import random

import pytest

from pyk8s.util.backoff import Backoff
from pyk8s.util.clock import FakeClock


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(1.0, 5.0)
    assert [b.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    b.reset()
    assert b.next() == 1.0


def test_jitter_stays_within_its_bound() -> None:
    b = Backoff(1.0, 1.0, jitter=0.5, rng=random.Random(1))
    delays = [b.next() for _ in range(100)]
    assert all(1.0 <= d <= 1.5 for d in delays) and len(set(delays)) > 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)


def test_fake_clock() -> None:
    c = FakeClock(10)
    c.advance(2.5)
    assert c.now() == 12.5
