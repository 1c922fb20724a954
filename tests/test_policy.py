from __future__ import annotations

from datetime import timedelta

import pytest

from steadycache import (
    CacheAside,
    ConfigurationError,
    EarlyRefresh,
    Eviction,
    Invalidation,
    Policy,
    ReadThrough,
    Scope,
    Security,
    Sensitivity,
    SingleFlight,
    Sizing,
    StaleIfError,
    StaleWhileRevalidate,
    Stampede,
    Ttl,
)
from steadycache.policy import (
    DECISIONS,
    HotKeyWarmUp,
    LoaderTimeouts,
    OnEvent,
    OnTableChange,
    OriginLimit,
    RefreshAhead,
    WriteBehind,
    WriteThrough,
)


def test_defaults_are_recorded_as_defaults() -> None:
    policy = Policy()
    assert policy.explicit == frozenset()
    assert all(not policy.is_explicit(name) for name in DECISIONS)
    assert isinstance(policy.pattern, CacheAside)
    # The safe default stampede protection: single-flight, early refresh, TTL jitter.
    assert policy.stampede.single_flight is not None
    assert policy.stampede.early_refresh is not None
    assert policy.invalidation.ttl.jitter > 0


def test_explicit_choices_are_recorded() -> None:
    policy = Policy(pattern=ReadThrough(), invalidation=Ttl(60))
    assert policy.explicit == {"pattern", "invalidation"}
    assert policy.is_explicit("pattern")
    assert not policy.is_explicit("stampede")
    # Choosing the value that happens to equal the default is still a choice.
    assert Policy(stampede=Stampede()).is_explicit("stampede")


def test_replace_keeps_explicit_status() -> None:
    policy = Policy(pattern=ReadThrough()).replace(invalidation=Ttl(5))
    assert policy.explicit == {"pattern", "invalidation"}
    assert policy.invalidation.ttl.seconds == 5


def test_unknown_decision_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown decision"):
        Policy().is_explicit("colour")


def test_durations_accept_timedelta() -> None:
    assert Ttl(timedelta(minutes=2)).seconds == 120.0
    assert StaleIfError(timedelta(seconds=30)).seconds == 30.0


@pytest.mark.parametrize(
    ("make", "decision", "fragment"),
    [
        (lambda: Ttl(0), "invalidation", "positive"),
        (lambda: Ttl(-1), "invalidation", "positive"),
        (lambda: Ttl(float("inf")), "invalidation", "finite"),
        (lambda: Ttl("60"), "invalidation", "seconds or a timedelta"),  # type: ignore[arg-type]
        (lambda: Ttl(60, jitter=1.0), "invalidation", "jitter"),
        (lambda: EarlyRefresh(beta=0), "stampede", "beta"),
        (lambda: SingleFlight(wait_timeout=0), "stampede", "wait_timeout"),
        (lambda: Eviction(max_entries=None, max_bytes=None), "eviction", "unbounded"),
        (lambda: Eviction(max_entries=0), "eviction", "max_entries"),
        (lambda: Eviction(policy="random"), "eviction", "unknown eviction policy"),
        (lambda: Security(codec="pickle"), "security", "pickle"),
        (lambda: Security(max_key_length=10), "security", "max_key_length"),
        (lambda: Scope("user id"), "security", "identifier"),
        (lambda: Scope("a", "a"), "security", "repeated"),
        (lambda: Sizing(max_value_bytes=0), "sizing", "max_value_bytes"),
        (lambda: RefreshAhead(at=1.0), "stampede", "RefreshAhead"),
        (lambda: LoaderTimeouts(soft=2, hard=1), "stampede", "soft"),
        (lambda: OriginLimit(max_concurrent=0), "stampede", "max_concurrent"),
        (lambda: HotKeyWarmUp(target=0), "warm_up", "target"),
        (lambda: Policy(stampede=Invalidation()), "stampede", "expected Stampede"),  # type: ignore[arg-type]
    ],
)
def test_invalid_values_name_the_decision(make: object, decision: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.decision == decision
    assert fragment in str(caught.value)


def test_personal_data_needs_scope_and_hashed_keys() -> None:
    with pytest.raises(ConfigurationError, match="scope dimensions"):
        Policy(sensitivity=Sensitivity.PERSONAL)
    with pytest.raises(ConfigurationError, match="hash_keys"):
        Policy(sensitivity=Sensitivity.PERSONAL, security=Security(scope=Scope("user_id")))
    policy = Policy(
        sensitivity=Sensitivity.PERSONAL,
        security=Security(scope=Scope("user_id"), hash_keys=True),
    )
    assert policy.sensitivity.level is Sensitivity.PERSONAL


def test_personal_hot_key_snapshot_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="personal keys to disk"):
        Policy(
            sensitivity=Sensitivity.PERSONAL,
            security=Security(scope=Scope("user_id"), hash_keys=True),
            warm_up=HotKeyWarmUp(snapshot_path="/tmp/x.json"),
        )


def test_personal_hot_key_snapshot_in_redis_is_refused() -> None:
    from steadycache.policy import SharedTiers

    with pytest.raises(ConfigurationError, match="to Redis"):
        Policy(
            sensitivity=Sensitivity.PERSONAL,
            security=Security(scope=Scope("user_id"), hash_keys=True),
            warm_up=HotKeyWarmUp(),
            consistency=SharedTiers(),
        )


def test_transactional_is_refused_without_acknowledgement() -> None:
    with pytest.raises(ConfigurationError, match="not cached unless"):
        Policy(sensitivity=Sensitivity.TRANSACTIONAL)


def test_transactional_staleness_bound_is_enforced() -> None:
    ack = Sensitivity.transactional(max_staleness=10, acknowledged_by="payments: 10 s is fine")
    with pytest.raises(ConfigurationError, match="allows 40s"):
        Policy(
            sensitivity=ack,
            invalidation=Ttl(10),
            stampede=Stampede(stale_while_revalidate=StaleWhileRevalidate(30)),
        )
    ok = Policy(sensitivity=ack, invalidation=Ttl(5), stampede=Stampede(early_refresh=None))
    assert ok.sensitivity.max_staleness == 10


def test_triggers_need_an_owner_and_valid_templates() -> None:
    with pytest.raises(ConfigurationError, match="needs an owner"):
        Invalidation(triggers=(OnEvent("booking.changed"),))
    with pytest.raises(ConfigurationError, match="not in key_columns"):
        OnTableChange("hotels", key_columns=("id",), tags=("hotel:{hotel_id}",))
    with pytest.raises(ConfigurationError, match="plain name"):
        OnEvent("hotel.updated", tags=("hotel:{0}",))
    with pytest.raises(ConfigurationError, match="plain"):
        OnTableChange("hotels; drop table x", key_columns=("id",))
    rule = OnTableChange("public.hotels", key_columns=("id",), keys=("{id}",))
    assert rule.event == "table:public.hotels"
    assert not rule.whole_namespace
    single = Invalidation(owner="search-team", triggers=OnEvent("catalog.reloaded"))  # type: ignore[arg-type]
    assert single.triggers[0].whole_namespace


def test_write_patterns_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="sqlite_path"):
        WriteBehind(journal="sqlite")
    with pytest.raises(ConfigurationError, match="journal must be one of"):
        WriteBehind(journal="kafka")
    with pytest.raises(ConfigurationError, match="who accepted"):
        WriteBehind(journal="redis", accept_loss="  ")
    with pytest.raises(ConfigurationError, match="on_write"):
        WriteThrough(on_write="upsert")
    assert Policy(pattern=WriteThrough()).pattern.name == "write-through"


def test_policy_is_frozen() -> None:
    policy = Policy()
    with pytest.raises(AttributeError):
        policy.pattern = ReadThrough()  # type: ignore[misc]


# --- the ttl= shorthand -----------------------------------------------------------------------


def test_ttl_is_shorthand_for_choosing_invalidation() -> None:
    policy = Policy(ttl=60)
    assert policy == Policy(invalidation=Ttl(60))  # the same decisions, the same explicit set
    assert policy.invalidation == Invalidation(ttl=Ttl(60))
    assert policy.explicit == {"invalidation"}
    assert Policy(ttl=timedelta(minutes=2)).invalidation.ttl.seconds == 120
    assert Policy(ttl=Ttl(30, jitter=0)).invalidation.ttl == Ttl(30, jitter=0)
    with pytest.raises(ConfigurationError, match="Ttl seconds") as caught:
        Policy(ttl=-1)
    assert caught.value.decision == "invalidation"


def test_ttl_and_invalidation_together_are_refused_naming_the_decision() -> None:
    with pytest.raises(ConfigurationError, match="not both") as caught:
        Policy(ttl=60, invalidation=Ttl(30))
    assert caught.value.decision == "invalidation"


def test_replace_takes_the_ttl_shorthand_too() -> None:
    policy = Policy(pattern=ReadThrough(), invalidation=Ttl(5)).replace(ttl=9)
    assert policy.invalidation.ttl.seconds == 9
    assert policy.explicit == {"pattern", "invalidation"}
    with pytest.raises(ConfigurationError, match="not both"):
        Policy().replace(ttl=9, invalidation=Ttl(5))


# --- cache-aside chosen on purpose ------------------------------------------------------------


def test_cache_aside_chosen_on_purpose_refuses_what_needs_the_cache_to_load() -> None:
    refresh = Stampede(refresh_ahead=RefreshAhead(at=0.75))
    with pytest.raises(ConfigurationError, match="refresh ahead") as caught:
        Policy(pattern=CacheAside(), stampede=refresh)
    assert caught.value.decision == "pattern"
    with pytest.raises(ConfigurationError, match="HotKeyWarmUp") as caught:
        Policy(pattern=CacheAside(), warm_up=HotKeyWarmUp(snapshot_path="hot.json"))
    assert caught.value.decision == "pattern"
    # With the pattern left at its default, or read-through, both are fine.
    Policy(stampede=refresh, warm_up=HotKeyWarmUp(snapshot_path="hot.json"))
    Policy(pattern=ReadThrough(), stampede=refresh)
