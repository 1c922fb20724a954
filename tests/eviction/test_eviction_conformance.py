"""The contract every eviction policy must honour, run over every registered policy."""

from __future__ import annotations

import math
import random

import pytest

from steadycache.eviction import DEFAULT_POLICY, POLICIES, EvictionPolicy, make_policy

ALL_POLICIES = sorted(POLICIES)


def _check_invariants(policy: EvictionPolicy, resident: dict[int, int]) -> None:
    assert policy.used <= policy.capacity
    assert len(policy) == len(resident)
    assert policy.used == sum(resident.values())
    for key in resident:
        assert key in policy


def _apply_victims(
    victims: list[object], resident: dict[int, int], before: set[int], new_key: int | None
) -> None:
    assert len(set(victims)) == len(victims), "a key was evicted twice"
    for victim in victims:
        assert victim in before or victim == new_key, f"victim {victim!r} was not resident"
        assert isinstance(victim, int)
        resident.pop(victim, None)


def _drive(name: str, capacity: int, max_size: int, seed: int, steps: int = 4000) -> None:
    """Random gets/inserts/updates/removes/evict_one over a small key space, checking always."""
    rng = random.Random(seed)
    policy = make_policy(name, capacity)
    resident: dict[int, int] = {}
    key_space = capacity * 3 // max(1, (max_size + 1) // 2) + 5
    for _ in range(steps):
        key = rng.randrange(key_space)
        action = rng.random()
        before = set(resident)
        if key in resident:
            assert key in policy
            if action < 0.75:
                policy.on_hit(key)
            elif action < 0.85:
                size = rng.randint(1, max_size)
                victims = policy.on_update(key, size, expires_at=rng.choice([math.inf, 5.0]))
                resident[key] = size
                _apply_victims(victims, resident, before | {key}, key)
            elif action < 0.95:
                policy.on_remove(key)
                del resident[key]
                assert key not in policy
            else:
                victim = policy.evict_one()
                assert victim in before
                assert isinstance(victim, int)
                del resident[victim]
        else:
            assert key not in policy
            size = rng.randint(1, max_size)
            victims = policy.on_insert(key, size, expires_at=rng.uniform(0, 100))
            resident[key] = size
            _apply_victims(victims, resident, before, key)
            for victim in victims:
                assert victim not in policy
        _check_invariants(policy, resident)


@pytest.mark.parametrize("name", ALL_POLICIES)
@pytest.mark.parametrize("capacity", [1, 3, 10, 200])
def test_entry_mode_invariants(name: str, capacity: int) -> None:
    _drive(name, capacity, max_size=1, seed=capacity)


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_byte_mode_invariants(name: str) -> None:
    _drive(name, capacity=5000, max_size=700, seed=7)


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_oversized_object_is_its_own_victim(name: str) -> None:
    policy = make_policy(name, 100)
    assert policy.on_insert("small", 10) == []
    assert policy.on_insert("huge", 101) == ["huge"]
    assert "huge" not in policy
    assert "small" in policy
    assert policy.used == 10


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_update_to_oversized_drops_the_key(name: str) -> None:
    policy = make_policy(name, 100)
    policy.on_insert("a", 10)
    assert policy.on_update("a", 500) == ["a"]
    assert "a" not in policy
    assert policy.used == 0


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_evict_one_empties_then_returns_none(name: str) -> None:
    policy = make_policy(name, 10)
    for key in range(10):
        assert policy.on_insert(key, 1) == []
    evicted = {policy.evict_one() for _ in range(10)}
    assert evicted == set(range(10))
    assert len(policy) == 0
    assert policy.used == 0
    assert policy.evict_one() is None


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_on_remove_keeps_no_ghost_and_frees_space(name: str) -> None:
    policy = make_policy(name, 4)
    for key in "abcd":
        policy.on_insert(key, 1)
    policy.on_remove("b")
    assert "b" not in policy
    assert policy.used == 3
    # Re-inserting a removed key is an ordinary miss that needs no eviction.
    assert policy.on_insert("b", 1) == []
    assert "b" in policy


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_full_cache_evicts_exactly_what_is_needed(name: str) -> None:
    policy = make_policy(name, 100)
    for key in range(100):
        policy.on_insert(key, 1)
    victims = policy.on_insert("new", 1)
    assert len(victims) == 1
    assert policy.used == 100


@pytest.mark.parametrize("name", ALL_POLICIES)
@pytest.mark.parametrize("bad", [0, -5])
def test_capacity_must_be_positive(name: str, bad: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        make_policy(name, bad)


def test_registry_names_and_default() -> None:
    assert set(POLICIES) == {
        "fifo",
        "lru",
        "lfu",
        "ttl",
        "arc",
        "sieve",
        "s3fifo",
        "wtinylfu",
        "wtinylfu-adaptive",
    }
    for name, policy in POLICIES.items():
        assert policy.name == name
        assert issubclass(policy, EvictionPolicy)
    assert DEFAULT_POLICY in POLICIES


def test_unknown_policy_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*arc.*wtinylfu-adaptive"):
        make_policy("nope", 10)


def test_ttl_evicts_nearest_expiry_then_insertion_order() -> None:
    policy = make_policy("ttl", 3)
    policy.on_insert("forever-1", 1)
    policy.on_insert("late", 1, expires_at=50.0)
    policy.on_insert("soon", 1, expires_at=10.0)
    assert policy.on_insert("x", 1) == ["soon"]
    assert policy.on_insert("y", 1) == ["late"]
    # Only TTL-less keys are left: insertion order decides.
    assert policy.on_insert("z", 1) == ["forever-1"]
    assert policy.on_insert("w", 1) == ["x"]


def test_ttl_update_moves_expiry() -> None:
    policy = make_policy("ttl", 2)
    policy.on_insert("a", 1, expires_at=1.0)
    policy.on_insert("b", 1, expires_at=2.0)
    policy.on_update("a", 1, expires_at=9.0)
    assert policy.on_insert("c", 1) == ["b"]


def test_lfu_evicts_least_frequent_fifo_among_ties() -> None:
    policy = make_policy("lfu", 3)
    for key in "abc":
        policy.on_insert(key, 1)
    policy.on_hit("a")
    policy.on_hit("c")
    assert policy.on_insert("d", 1) == ["b"]
    # a and c both have count 2; d has 1 and goes first, then a (reached 2 first).
    assert policy.on_insert("e", 1) == ["d"]
    policy.on_hit("e")
    assert policy.on_insert("f", 1) == ["a"]


def test_sieve_keeps_visited_keys() -> None:
    policy = make_policy("sieve", 3)
    for key in "abc":
        policy.on_insert(key, 1)
    policy.on_hit("a")
    assert policy.on_insert("d", 1) == ["b"]
    assert policy.on_insert("e", 1) == ["c"]
    # The hand stays where it stopped (on d, newer than a) instead of restarting at the
    # oldest key: that is what separates SIEVE from CLOCK. a survives until the hand wraps.
    assert policy.on_insert("f", 1) == ["d"]
    assert policy.on_insert("g", 1) == ["e"]
    assert "a" in policy


def test_arc_promotes_ghost_hits_to_frequency_list() -> None:
    policy = make_policy("arc", 2)
    policy.on_insert("a", 1)
    policy.on_insert("b", 1)
    assert policy.on_insert("c", 1) == ["a"]  # a becomes a B1 ghost
    victims = policy.on_insert("a", 1)  # ghost hit: p grows, a goes to T2
    assert victims == ["b"]
    assert "a" in policy
    assert "c" in policy


def test_s3fifo_one_hit_wonders_leave_through_the_small_queue() -> None:
    policy = make_policy("s3fifo", 20)  # small queue of 2, main of 18
    for key in range(20):
        policy.on_insert(key, 1)  # 0 and 1 fill the small queue, the rest go to main
    for key in range(100, 110):
        victims = policy.on_insert(key, 1)
        # Newcomers only displace each other (and the first small-queue keys).
        assert all(victim in (0, 1, *range(100, 110)) for victim in victims)
    assert all(key in policy for key in range(2, 20))
