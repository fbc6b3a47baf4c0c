"""Delivery settings: the backoff curve, jitter, Retry-After, and how [delivery] and [routing] are checked."""

from __future__ import annotations

import random

import pytest

from engine.delivery.config import DeliveryPolicy, Routing
from engine.delivery.leases import lease_seconds
from engine.domain.errors import BadInput


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_retry_delay_doubles_from_base_until_cap_when_jitter_is_zero() -> None:
    """Failures 0..8 wait 30 s, 1, 2, 4, 8, 16, 32 minutes, then the one-hour cap."""
    policy = DeliveryPolicy()
    delays = [policy.retry_delay(n, None, FixedRandom(0.0)) for n in range(9)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_retry_delay_takes_off_at_most_a_fifth_when_jitter_is_drawn() -> None:
    """Jitter only shortens a wait, by up to 20 %, so the cap is never exceeded."""
    policy = DeliveryPolicy()
    assert policy.retry_delay(0, None, FixedRandom(0.999999)) == pytest.approx(24, abs=0.01)
    assert policy.retry_delay(20, None, FixedRandom(0.5)) == pytest.approx(3240)


def test_retry_delay_honours_retry_after_when_channel_asks_for_longer() -> None:
    """A channel's Retry-After beats a shorter backoff; a shorter Retry-After does not shorten it."""
    policy = DeliveryPolicy()
    assert policy.retry_delay(0, 900, FixedRandom(0.0)) == 900
    assert policy.retry_delay(3, 5, FixedRandom(0.0)) == 240



@pytest.mark.parametrize("asked", [999_999_999_999, float("inf"), 86_401])
def test_retry_delay_waits_at_most_a_day_when_retry_after_is_absurd(asked: float) -> None:
    """A Retry-After longer than a day, or infinite, is cut to one day."""
    assert DeliveryPolicy().retry_delay(0, asked, FixedRandom(0.0)) == 86_400


def test_retry_delay_ignores_retry_after_when_it_is_not_a_number() -> None:
    """A NaN Retry-After is ignored and the backoff applies."""
    assert DeliveryPolicy().retry_delay(0, float("nan"), FixedRandom(0.0)) == 30

def test_delivery_policy_reads_config_when_values_are_valid() -> None:
    """Every [delivery] key overrides its default."""
    policy = DeliveryPolicy.from_config({"base_seconds": 5, "cap_seconds": 60, "max_attempts": 3, "jitter": 0,
                                         "batch_size": 10, "claim_seconds": 30})
    assert policy == DeliveryPolicy(base_seconds=5, cap_seconds=60, max_attempts=3, jitter=0, batch_size=10,
                                    claim_seconds=30)


@pytest.mark.parametrize(("section", "message"), [
    ({"max_attempts": 0}, "[delivery] max_attempts: must be greater than or equal to 1, not 0"),
    ({"max_attempts": 2.5}, "[delivery] max_attempts: must be a whole number, not 2.5"),
    ({"jitter": 2}, "[delivery] jitter: must be less than or equal to 1, not 2"),
    ({"base_seconds": True}, "[delivery] base_seconds: must be a number, not True"),
    ({"retries": 3}, "[delivery] retries: unknown key"),
    ({"base_seconds": 100, "cap_seconds": 10}, "[delivery]: cap_seconds must not be smaller than base_seconds"),
])
def test_delivery_policy_refuses_config_when_value_is_out_of_range(section: dict[str, object], message: str) -> None:
    """A bad [delivery] value is bad input that names the key."""
    with pytest.raises(BadInput) as refused:
        DeliveryPolicy.from_config(section)
    assert message in refused.value.message


def test_routing_sends_everything_everywhere_when_no_routes_are_configured() -> None:
    """Without [routing] each notifier gets every kind."""
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def send(self, notification: object) -> None:
            """Accept anything."""

    notifiers = [Named("file"), Named("email")]
    assert [n.name for n in Routing.from_config({}, ["file", "email"]).targets("escalation", notifiers)] == [
        "file", "email"]
    quiet = Routing.from_config({"stage_changed": [], "default": ["file"]}, ["file", "email"])
    assert quiet.targets("stage_changed", notifiers) == []
    assert [n.name for n in quiet.targets("task_due", notifiers)] == ["file"]


@pytest.mark.parametrize(("interval", "lease"), [(0.2, 5.0), (10, 30.0), (60, 120.0), (3600, 120.0)])
def test_lease_lasts_three_intervals_within_bounds_when_interval_varies(interval: float, lease: float) -> None:
    """Leases are three sweep intervals long, at least 5 s and at most 2 minutes."""
    assert lease_seconds(interval) == lease


def test_routing_refuses_config_when_it_names_unconfigured_notifier_or_unknown_kind() -> None:
    """A route to a notifier that is not configured, or for a kind that does not exist, is bad input."""
    with pytest.raises(BadInput) as refused:
        Routing.from_config({"escalations": ["email"], "task_due": ["sms"]}, ["email"])
    assert refused.value.lines() == ["[routing] escalations: unknown key; did you mean `escalation`?"]
    with pytest.raises(BadInput) as refused:
        Routing.from_config({"escalation": ["email"], "task_due": ["sms"]}, ["email"])
    assert refused.value.lines() == ["[routing] task_due: notifier(s) sms not configured (configured: email)"]
