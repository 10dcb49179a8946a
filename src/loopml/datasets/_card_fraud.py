"""The built-in card-fraud scenario: a seeded, vectorised generator of a realistic world.

The generative story (every number below is also recorded in :class:`GroundTruth`):

1. **Entities.** ``n_cards`` cards, each with a home country, an issue date, a tier and a
   credit limit, and two latent traits that never appear in the tables: its activity rate
   (transactions a day, Gamma(2, 0.3), mean 0.6) and its usual spend level (the log-mean of its
   amounts, Normal(log 35, 0.5)). ``n_merchants`` merchants, each with a category
   (grocery, restaurants, fuel, ...), a risk score (Beta(1, 8), higher for risky categories)
   and a popularity (heavy-tailed).
2. **Legitimate transactions.** Each card makes Poisson(rate x n_days) transactions on uniform
   days, at hours drawn from a day-time profile (few at night), at merchants drawn by
   popularity. The amount is log-normal around the card's spend level times the category's
   level (sigma 0.7). 96 % happen in the home country. The channel (pos / contactless /
   online) depends on the category; the device (terminal / ios / android / desktop) on the
   channel, and ``device_age_days`` says how long that device has been seen on the card.
3. **Fraud** (about ``fraud_rate`` of all transactions) comes in *episodes*: a card is
   compromised and a fraudster makes a burst of transactions with it. Three patterns:

   * ``big_spend`` (rule-like): 1-5 transactions within 48 h, amounts 5-20x the card's usual,
     at electronics / jewelry / travel / digital-goods merchants, mostly at night, mostly
     abroad (70 %), mostly online from a new device (80 %);
   * ``subtle``: 1-5 transactions within 48 h, amounts near the card's usual (x1.35), at
     riskier merchants of any category, at home, ordinary hours, a new device 30 % of the time;
   * ``card_testing`` (the **new pattern**, only from ``new_fraud_pattern_at``): 3-8 tiny
     online amounts ($0.50-$5) at digital-goods merchants within 30 minutes.

   Before the new pattern appears episodes are 55 % big_spend / 45 % subtle; afterwards
   35 / 30 / 35 % with card_testing, keeping the fraud rate about the same.
4. **Spending shift.** From ``spending_shift_at`` legitimate amounts in grocery, fuel and
   restaurants are multiplied by 1.3 (an inflation shock): covariate drift with known date.
5. **Missing values, not at random.** ``device`` (and with it ``device_age_days``) is missing
   with a probability that depends on the channel (2 % at pos / contactless, 8 % online) and,
   unobservably, on fraud (+30 % for big_spend and subtle, 50 % for card_testing), so the
   missingness itself carries signal about the label.
6. **Chargebacks, the natural labels.** 85 % of fraud episodes are reported by the
   cardholder; the other 15 % never are. A reported episode's chargebacks all arrive together,
   ``delay`` after the episode's last transaction, with delay log-normal (median 10 days,
   sigma 0.7) clipped to [1, 60] days. So each chargeback arrives 1 to 62 days after its
   transaction, and some arrive after the generated period ends: ask
   :meth:`CardFraud.chargebacks_as_of` for what is known at a given time.

Hours are drawn in UTC, which stands in for local time. Every timestamp is tz-aware UTC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.core import ConfigError

__all__ = ["CardFraud", "GroundTruth", "LabelDelay", "card_fraud"]

CATEGORIES = (
    "grocery",
    "restaurants",
    "fuel",
    "fashion",
    "health",
    "entertainment",
    "electronics",
    "travel",
    "digital_goods",
    "jewelry",
)
_CATEGORY_WEIGHT = np.array([0.22, 0.18, 0.12, 0.1, 0.08, 0.08, 0.07, 0.06, 0.06, 0.03])
_CATEGORY_LOG_LEVEL = np.array([0.0, -0.2, 0.1, 0.5, 0.2, -0.1, 1.3, 1.5, -0.8, 1.6])
_CATEGORY_ONLINE = np.array([0.05, 0.1, 0.0, 0.35, 0.15, 0.3, 0.4, 0.6, 1.0, 0.2])
_CATEGORY_RISK = np.array([0.0, 0.0, 0.02, 0.05, 0.0, 0.03, 0.15, 0.12, 0.15, 0.2])
_RISKY_CATEGORIES = ("electronics", "jewelry", "travel", "digital_goods")
SHIFTED_CATEGORIES = ("grocery", "fuel", "restaurants")

COUNTRIES = ("US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "BR", "MX", "NG", "RO")
_HOME_WEIGHT = np.array([0.55, 0.12, 0.1, 0.08, 0.06, 0.03, 0.03, 0.03, 0, 0, 0, 0])
_FOREIGN_WEIGHT = np.array([0.2, 0.12, 0.1, 0.12, 0.08, 0.1, 0.1, 0.06, 0.04, 0.05, 0.01, 0.02])
_FRAUD_FOREIGN_WEIGHT = np.array(
    [0.1, 0.06, 0.05, 0.05, 0.04, 0.05, 0.05, 0.05, 0.15, 0.1, 0.15, 0.15]
)

CHANNELS = ("pos", "contactless", "online")
DEVICES = ("terminal", "ios", "android", "desktop")
PATTERNS = ("none", "big_spend", "subtle", "card_testing")
TIERS = ("standard", "gold", "platinum")

# Hour-of-day profiles (UTC stands in for local time).
_LEGIT_HOURS = np.array(
    [
        0.3,
        0.2,
        0.15,
        0.1,
        0.15,
        0.4,
        1.2,
        2.5,
        3.5,
        4.0,
        4.3,
        4.8,
        5.5,
        5.2,
        4.8,
        4.6,
        4.8,
        5.5,
        6.0,
        5.6,
        4.5,
        3.2,
        1.8,
        0.9,
    ]
)
_NIGHT_HOURS = np.array(
    [
        6.0,
        7.0,
        7.0,
        6.5,
        6.0,
        4.0,
        1.5,
        0.8,
        0.6,
        0.6,
        0.6,
        0.6,
        0.6,
        0.6,
        0.6,
        0.6,
        0.6,
        0.6,
        0.8,
        1.0,
        1.5,
        2.5,
        3.5,
        5.0,
    ]
)
_DEVICE_MISSING = {"pos": 0.02, "contactless": 0.02, "online": 0.08}
_FRAUD_DEVICE_MISSING = {"big_spend": 0.30, "subtle": 0.30, "card_testing": 0.50}
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class LabelDelay:
    """How long after its fraud episode a chargeback arrives (days, log-normal, clipped).

    >>> LabelDelay().median_days, LabelDelay().max_days
    (10.0, 60.0)
    """

    distribution: str = "lognormal"
    median_days: float = 10.0
    sigma: float = 0.7
    min_days: float = 1.0
    max_days: float = 60.0
    episode_max_hours: float = 48.0
    """Transactions of one episode span at most this long, so a chargeback arrives between
    ``min_days`` and ``max_days + episode_max_hours / 24`` after its transaction."""


@dataclass(frozen=True)
class GroundTruth:
    """What the generator planted: the facts a drift detector or a label model must recover.

    >>> truth = card_fraud(n_days=10, n_cards=50, n_merchants=20).ground_truth
    >>> truth.new_fraud_pattern_at.isoformat(), truth.shifted_categories
    ('2024-01-07T00:00:00+00:00', ('grocery', 'fuel', 'restaurants'))
    """

    seed: int
    start: pd.Timestamp
    end: pd.Timestamp
    n_days: int
    fraud_rate_target: float
    fraud_rate: float
    """The realised share of fraudulent transactions (true labels)."""
    fraud_patterns: tuple[str, ...]
    new_fraud_pattern: str
    new_fraud_pattern_at: pd.Timestamp
    spending_shift_at: pd.Timestamp
    shifted_categories: tuple[str, ...]
    spending_shift_factor: float
    label_delay: LabelDelay
    unreported_fraction: float
    """Share of fraud *episodes* whose chargebacks never arrive."""
    device_missing_by_channel: dict[str, float] = field(default_factory=dict)
    device_missing_extra_if_fraud: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (timestamps as ISO 8601 text)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, pd.Timestamp):
                data[key] = value.isoformat()
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data


@dataclass(frozen=True, eq=False)
class CardFraud:
    """The generated world: tables as pandas DataFrames, plus the planted ground truth.

    ``transactions``, ``chargebacks``, ``cards`` and ``merchants`` are what a bank would
    have; ``labels`` holds the *true* label of every transaction (for tests and for scoring,
    never for training); ``ground_truth`` records what was planted and when.
    """

    transactions: pd.DataFrame
    chargebacks: pd.DataFrame
    cards: pd.DataFrame
    merchants: pd.DataFrame
    labels: pd.DataFrame
    ground_truth: GroundTruth

    def chargebacks_as_of(self, when: datetime | str) -> pd.DataFrame:
        """The chargebacks reported at or before ``when`` (what the bank knows then).

        >>> world = card_fraud(n_days=20, n_cards=300, n_merchants=50)
        >>> known = world.chargebacks_as_of(world.ground_truth.end)
        >>> len(known) <= len(world.chargebacks)
        True
        """
        moment = pd.Timestamp(when)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        known = self.chargebacks[self.chargebacks["reported_at"] <= moment]
        return known.reset_index(drop=True)


def card_fraud(
    *,
    n_days: int = 90,
    n_cards: int = 5000,
    n_merchants: int = 500,
    start: str | datetime = "2024-01-01",
    seed: int = 0,
    fraud_rate: float = 0.01,
) -> CardFraud:
    """Generate the card-fraud scenario: transactions, chargebacks, cards, merchants, truth.

    Deterministic for a given ``seed``; vectorised (a million transactions take about a
    second). See the module docstring for the generative story and ``docs/datasets.md``.

    >>> world = card_fraud(n_days=30, n_cards=500, n_merchants=100, seed=1)
    >>> sorted(world.transactions.columns)[:4]
    ['amount', 'card_id', 'channel', 'country']
    >>> str(world.transactions["event_time"].dt.tz)
    'UTC'
    >>> bool(0.0 < world.labels["is_fraud"].mean() < 0.03)
    True
    """
    start_ts = _check_params(n_days, n_cards, n_merchants, start, fraud_rate, seed)
    rng = np.random.default_rng(seed)
    cards = _cards(rng, n_cards, start_ts)
    merchants = _merchants(rng, n_merchants)
    truth = _truth(seed, start_ts, n_days, fraud_rate)
    legit = _legit(rng, cards, merchants, n_days)
    n_fraud_target = fraud_rate / (1.0 - fraud_rate) * len(legit["card"])
    fraud = _fraud(rng, cards, merchants, n_days, truth, n_fraud_target)
    return _assemble(rng, cards, merchants, legit, fraud, truth)


# -- parameters -------------------------------------------------------------------------
def _check_params(
    n_days: int,
    n_cards: int,
    n_merchants: int,
    start: str | datetime,
    fraud_rate: float,
    seed: int,
) -> pd.Timestamp:
    for name, value, low in (
        ("n_days", n_days, 2),
        ("n_cards", n_cards, 1),
        ("n_merchants", n_merchants, 10),
        ("seed", seed, 0),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise ConfigError(
                f"The '{name}' parameter of card_fraud must be an integer >= {low}. "
                f"Got {value!r} instead."
            )
    if not 0.0 < fraud_rate < 0.5:
        raise ConfigError(
            "The 'fraud_rate' parameter of card_fraud must be a share in (0, 0.5). "
            f"Got {fraud_rate!r} instead."
        )
    try:
        stamp = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ConfigError(
            "The 'start' parameter of card_fraud must be a date like '2024-01-01'. "
            f"Got {start!r} instead."
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _truth(seed: int, start: pd.Timestamp, n_days: int, fraud_rate: float) -> GroundTruth:
    new_day = max(1, round(n_days * 0.6))
    shift_day = max(1, round(n_days * 0.75))
    day = pd.Timedelta(days=1)
    return GroundTruth(
        seed=seed,
        start=start,
        end=start + n_days * day,
        n_days=n_days,
        fraud_rate_target=fraud_rate,
        fraud_rate=float("nan"),
        fraud_patterns=PATTERNS[1:],
        new_fraud_pattern="card_testing",
        new_fraud_pattern_at=start + new_day * day,
        spending_shift_at=start + shift_day * day,
        shifted_categories=SHIFTED_CATEGORIES,
        spending_shift_factor=1.3,
        label_delay=LabelDelay(),
        unreported_fraction=0.15,
        device_missing_by_channel=dict(_DEVICE_MISSING),
        device_missing_extra_if_fraud=dict(_FRAUD_DEVICE_MISSING),
    )


# -- entities ---------------------------------------------------------------------------
def _cards(rng: np.random.Generator, n: int, start: pd.Timestamp) -> dict[str, Any]:
    age_days = np.clip(rng.exponential(700.0, n), 30.0, 3650.0)
    return {
        "id": np.arange(1, n + 1, dtype=np.int64),
        "home": rng.choice(len(COUNTRIES), size=n, p=_HOME_WEIGHT / _HOME_WEIGHT.sum()),
        "issued_at": start - pd.to_timedelta(np.round(age_days * _SECONDS_PER_DAY), unit="s"),
        "tier": rng.choice(len(TIERS), size=n, p=[0.7, 0.22, 0.08]),
        "rate": rng.gamma(2.0, 0.3, n),
        "log_level": rng.normal(np.log(35.0), 0.5, n),
        "contactless": rng.beta(3.0, 3.0, n),
    }


def _merchants(rng: np.random.Generator, n: int) -> dict[str, Any]:
    category = rng.choice(len(CATEGORIES), size=n, p=_CATEGORY_WEIGHT / _CATEGORY_WEIGHT.sum())
    risk = np.clip(rng.beta(1.0, 8.0, n) + _CATEGORY_RISK[category], 0.0, 1.0)
    popularity = rng.pareto(1.5, n) + 1.0
    return {
        "id": np.arange(1, n + 1, dtype=np.int64),
        "category": category,
        "risk": np.round(risk, 4),
        "popularity": popularity / popularity.sum(),
    }


# -- transactions -----------------------------------------------------------------------
def _times(rng: np.random.Generator, days: np.ndarray, hours_profile: np.ndarray) -> np.ndarray:
    """Seconds since start: the given day, an hour from the profile, a uniform second."""
    hours = rng.choice(24, size=len(days), p=hours_profile / hours_profile.sum())
    seconds = rng.integers(0, 3600, size=len(days))
    return np.asarray(days * _SECONDS_PER_DAY + hours * 3600 + seconds, dtype=np.int64)


def _legit(
    rng: np.random.Generator, cards: dict[str, Any], merchants: dict[str, Any], n_days: int
) -> dict[str, np.ndarray]:
    counts = rng.poisson(cards["rate"] * n_days)
    card = np.repeat(np.arange(len(counts)), counts)
    n = len(card)
    merchant = rng.choice(len(merchants["id"]), size=n, p=merchants["popularity"])
    category = merchants["category"][merchant]
    log_amount = cards["log_level"][card] + _CATEGORY_LOG_LEVEL[category] + rng.normal(0, 0.7, n)
    abroad = rng.random(n) < 0.04
    foreign = rng.choice(len(COUNTRIES), size=n, p=_FOREIGN_WEIGHT / _FOREIGN_WEIGHT.sum())
    online = rng.random(n) < _CATEGORY_ONLINE[category]
    contactless = rng.random(n) < cards["contactless"][card]
    return {
        "card": card,
        "merchant": merchant,
        "seconds": _times(rng, rng.integers(0, n_days, size=n), _LEGIT_HOURS),
        "amount": np.exp(log_amount),
        "country": np.where(abroad, foreign, cards["home"][card]),
        "channel": np.where(online, 2, np.where(contactless, 1, 0)),
        "new_device": rng.random(n) < 0.03,
        "pattern": np.zeros(n, dtype=np.int64),
    }


def _fraud(
    rng: np.random.Generator,
    cards: dict[str, Any],
    merchants: dict[str, Any],
    n_days: int,
    truth: GroundTruth,
    n_target: float,
) -> dict[str, np.ndarray]:
    new_day = (truth.new_fraud_pattern_at - truth.start).days
    # Episode mix by period; mean burst sizes are 3 (big_spend, subtle) and 5.5 (testing), so
    # the episode rate is set per period to keep the share of fraudulent transactions steady.
    before, after = np.array([0.55, 0.45, 0.0]), np.array([0.35, 0.30, 0.35])
    sizes_mean = np.array([3.0, 3.0, 5.5])
    n_before = int(rng.poisson(n_target * new_day / n_days / (before @ sizes_mean)))
    n_after = int(rng.poisson(n_target * (n_days - new_day) / n_days / (after @ sizes_mean)))
    n_episodes = n_before + n_after
    episode_day = np.concatenate(
        [rng.integers(0, new_day, n_before), rng.integers(new_day, n_days, n_after)]
    )
    late = episode_day >= new_day
    u = rng.random(n_episodes)
    pattern = np.where(late, 1 + _pick(u, after), 1 + _pick(u, before))
    size = np.where(pattern == 3, rng.integers(3, 9, n_episodes), rng.integers(1, 6, n_episodes))
    episode_card = rng.integers(0, len(cards["id"]), size=n_episodes)
    episode = np.repeat(np.arange(n_episodes), size)
    return _fraud_rows(rng, cards, merchants, n_days, episode, pattern, episode_day, episode_card)


def _pick(u: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Index into ``probabilities`` chosen by uniform numbers ``u`` (vectorised choice)."""
    index = np.searchsorted(np.cumsum(probabilities), u, side="right")
    return np.asarray(index.clip(0, len(probabilities) - 1))


def _fraud_rows(
    rng: np.random.Generator,
    cards: dict[str, Any],
    merchants: dict[str, Any],
    n_days: int,
    episode: np.ndarray,
    episode_pattern: np.ndarray,
    episode_day: np.ndarray,
    episode_card: np.ndarray,
) -> dict[str, np.ndarray]:
    n = len(episode)
    pattern, card = episode_pattern[episode], episode_card[episode]
    big, testing = pattern == 1, pattern == 3
    # Times: big_spend at night over up to two days, subtle in the day, testing in 30 minutes.
    day = np.minimum(episode_day[episode] + rng.integers(0, 2, n), n_days - 1)
    seconds = np.where(big, _times(rng, day, _NIGHT_HOURS), _times(rng, day, _LEGIT_HOURS))
    testing_start = _times(rng, episode_day, _LEGIT_HOURS)[episode]
    testing_start = np.minimum(testing_start, n_days * _SECONDS_PER_DAY - 1801)
    seconds = np.where(testing, testing_start + rng.integers(0, 1800, n), seconds)
    merchant = _fraud_merchants(rng, merchants, pattern)
    usual = np.exp(cards["log_level"][card])
    amount = np.where(big, usual * rng.uniform(5.0, 20.0, n), usual * rng.lognormal(0.3, 0.5, n))
    amount = np.where(testing, rng.uniform(0.5, 5.0, n), amount)
    abroad = rng.random(n) < np.where(big, 0.7, np.where(testing, 0.5, 0.1))
    weights = _FRAUD_FOREIGN_WEIGHT / _FRAUD_FOREIGN_WEIGHT.sum()
    foreign = rng.choice(len(COUNTRIES), size=n, p=weights)
    online = rng.random(n) < np.where(big, 0.7, np.where(testing, 1.0, 0.25))
    category = merchants["category"][merchant]
    online |= _CATEGORY_ONLINE[category] >= 1.0
    return {
        "card": card,
        "merchant": merchant,
        "seconds": seconds,
        "amount": amount,
        "country": np.where(abroad, foreign, cards["home"][card]),
        "channel": np.where(online, 2, np.where(rng.random(n) < 0.5, 1, 0)),
        "new_device": rng.random(n) < np.where(big, 0.8, np.where(testing, 0.9, 0.3)),
        "pattern": pattern,
        "episode": episode,
    }


def _fraud_merchants(
    rng: np.random.Generator, merchants: dict[str, Any], pattern: np.ndarray
) -> np.ndarray:
    """big_spend at risky categories, subtle at risky merchants, card testing at digital goods."""
    category = merchants["category"]
    risky = np.isin(category, [CATEGORIES.index(c) for c in _RISKY_CATEGORIES])
    digital = category == CATEGORIES.index("digital_goods")
    risk = merchants["risk"]
    choices = np.empty(len(pattern), dtype=np.int64)
    for code, weight in ((1, risky * (risk + 0.05)), (2, risk**2 + 1e-4), (3, digital * 1.0)):
        rows = pattern == code
        if not weight.any():  # tiny merchant tables may lack the category: fall back
            weight = risk + 0.05
        choices[rows] = rng.choice(len(risk), size=int(rows.sum()), p=weight / weight.sum())
    return choices


# -- assembling the tables --------------------------------------------------------------
def _assemble(
    rng: np.random.Generator,
    cards: dict[str, Any],
    merchants: dict[str, Any],
    legit: dict[str, np.ndarray],
    fraud: dict[str, np.ndarray],
    truth: GroundTruth,
) -> CardFraud:
    keys = ("card", "merchant", "seconds", "amount", "country", "channel", "new_device", "pattern")
    rows = {key: np.concatenate([legit[key], fraud[key]]) for key in keys}
    episode = np.concatenate([np.full(len(legit["card"]), -1), fraud["episode"]])
    order = np.argsort(rows["seconds"], kind="stable")
    rows = {key: value[order] for key, value in rows.items()}
    episode = episode[order]
    category = merchants["category"][rows["merchant"]]
    event_time = (truth.start + pd.to_timedelta(rows["seconds"], unit="s")).as_unit("us")
    rows["amount"] = _shift_amounts(rows, category, event_time, truth)
    transactions = _transactions(rng, cards, merchants, rows, category, event_time)
    is_fraud = (rows["pattern"] > 0).astype(np.int8)
    labels = pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"],
            "card_id": transactions["card_id"],
            "event_time": transactions["event_time"],
            "is_fraud": is_fraud,
            "fraud_pattern": _strings(PATTERNS, rows["pattern"]),
        }
    )
    chargebacks = _chargebacks(rng, transactions, episode, truth)
    truth = _with_rate(truth, float(is_fraud.mean()) if len(is_fraud) else 0.0)
    return CardFraud(
        transactions=transactions,
        chargebacks=chargebacks,
        cards=_cards_frame(cards),
        merchants=_merchants_frame(merchants),
        labels=labels,
        ground_truth=truth,
    )


def _shift_amounts(
    rows: dict[str, np.ndarray],
    category: np.ndarray,
    event_time: pd.DatetimeIndex,
    truth: GroundTruth,
) -> np.ndarray:
    shifted = np.isin(category, [CATEGORIES.index(c) for c in truth.shifted_categories])
    after = np.asarray(event_time >= truth.spending_shift_at)
    factor = np.where(shifted & after & (rows["pattern"] == 0), truth.spending_shift_factor, 1.0)
    return np.asarray(np.round(np.maximum(rows["amount"] * factor, 0.01), 2))


def _transactions(
    rng: np.random.Generator,
    cards: dict[str, Any],
    merchants: dict[str, Any],
    rows: dict[str, np.ndarray],
    category: np.ndarray,
    event_time: pd.DatetimeIndex,
) -> pd.DataFrame:
    n = len(rows["card"])
    device, device_age = _devices(rng, rows)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, n + 1, dtype=np.int64),
            "card_id": cards["id"][rows["card"]],
            "merchant_id": merchants["id"][rows["merchant"]],
            "event_time": event_time,
            "amount": rows["amount"],
            "merchant_category": _strings(CATEGORIES, category),
            "country": _strings(COUNTRIES, rows["country"]),
            "channel": _strings(CHANNELS, rows["channel"]),
            "device": device,
            "device_age_days": device_age,
        }
    )


def _devices(
    rng: np.random.Generator, rows: dict[str, np.ndarray]
) -> tuple[pd.api.extensions.ExtensionArray, np.ndarray]:
    """Device type by channel; missing not at random (by channel and, hidden, by fraud)."""
    n = len(rows["card"])
    channel, pattern = rows["channel"], rows["pattern"]
    wallet = rng.choice([1, 2], size=n, p=[0.55, 0.45])
    fraudster_desktop = (pattern > 0) & (rng.random(n) < 0.5)
    online = np.where(fraudster_desktop, 3, rng.choice([1, 2, 3], size=n, p=[0.4, 0.35, 0.25]))
    tap_with_phone = rng.random(n) < 0.5
    code = np.where(channel == 2, online, np.where((channel == 1) & tap_with_phone, wallet, 0))
    base = np.array([_DEVICE_MISSING[c] for c in CHANNELS])[channel]
    extra = np.array([0.0, *(_FRAUD_DEVICE_MISSING[p] for p in PATTERNS[1:])])[pattern]
    missing = rng.random(n) < base + extra
    age = np.where(rows["new_device"], rng.uniform(0.0, 1.0, n), rng.exponential(200.0, n) + 1.0)
    device = _strings(DEVICES, code, missing=missing)
    return device, np.where(missing, np.nan, np.round(age, 2))


def _chargebacks(
    rng: np.random.Generator, transactions: pd.DataFrame, episode: np.ndarray, truth: GroundTruth
) -> pd.DataFrame:
    """Reported episodes: every transaction of one arrives together, ``delay`` after the last."""
    is_fraud = episode >= 0
    fraud_episode = episode[is_fraud]
    seconds = (transactions["event_time"] - truth.start).dt.total_seconds().to_numpy()[is_fraud]
    n_episodes = int(fraud_episode.max()) + 1 if len(fraud_episode) else 0
    last = np.full(n_episodes, -np.inf)
    np.maximum.at(last, fraud_episode, seconds)
    delay = truth.label_delay
    days = np.clip(
        rng.lognormal(np.log(delay.median_days), delay.sigma, n_episodes),
        delay.min_days,
        delay.max_days,
    )
    reported = rng.random(n_episodes) >= truth.unreported_fraction
    report_seconds = np.round(last + days * _SECONDS_PER_DAY)
    keep = reported[fraud_episode]
    frame = pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"].to_numpy()[is_fraud][keep],
            "card_id": transactions["card_id"].to_numpy()[is_fraud][keep],
            "reported_at": truth.start
            + pd.to_timedelta(report_seconds[fraud_episode][keep], unit="s"),
            "is_fraud": np.ones(int(keep.sum()), dtype=np.int8),
        }
    )
    return frame.sort_values(["reported_at", "transaction_id"], ignore_index=True)


def _cards_frame(cards: dict[str, Any]) -> pd.DataFrame:
    tier = cards["tier"]
    return pd.DataFrame(
        {
            "card_id": cards["id"],
            "home_country": _strings(COUNTRIES, cards["home"]),
            "issued_at": cards["issued_at"],
            "card_tier": _strings(TIERS, tier),
            "credit_limit": np.array([2000.0, 8000.0, 25000.0])[tier],
        }
    )


def _merchants_frame(merchants: dict[str, Any]) -> pd.DataFrame:
    category = merchants["category"]
    return pd.DataFrame(
        {
            "merchant_id": merchants["id"],
            "merchant_category": _strings(CATEGORIES, category),
            "risk_score": merchants["risk"],
            "online_only": _CATEGORY_ONLINE[category] >= 1.0,
        }
    )


def _strings(
    names: tuple[str, ...], codes: np.ndarray, *, missing: np.ndarray | None = None
) -> pd.api.extensions.ExtensionArray:
    """``names[codes]`` as a pandas string array, built in Arrow (10x faster than objects)."""
    indices = pa.array(codes, type=pa.int32(), mask=missing)
    strings: pd.api.extensions.ExtensionArray = pd.array(
        pa.array(names, type=pa.string()).take(indices), dtype="str"
    )
    return strings


def _with_rate(truth: GroundTruth, rate: float) -> GroundTruth:
    from dataclasses import replace

    return replace(truth, fraud_rate=rate)
