"""Customer-service interaction payloads, channel service norms, outages and CSAT.

CSAT is a noisy function of wait time against the channel's norm, resolution, sentiment,
transfers, agent skill and customer mood, so a model can beat a running mean.

>>> import random
>>> from finpulse.streams.simulator.population import build_population
>>> rng = random.Random(5)
>>> pop = build_population(rng, seed=5, n_customers=100)
>>> f = InteractionFactory(rng, seed=5, outages=Outages([]))
>>> d, csat = f.build(pop.customers[0], 1_767_607_200_000)
>>> d["event_id"], 1 <= csat <= 5, d["wait_seconds"] >= 0
('i-5-0', True, True)
>>> csat_score(wait_ratio=1.0, resolved=True, transfers=0, sentiment=0.5, skill=0.0, mood=0.0,
...            complaint=False, noise=0.0)
5
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

from finpulse.streams.simulator.population import INTERACTION_MIX, INTERACTION_TYPES, Customer
from finpulse.streams.simulator.timeline import INDIVIDUAL_HOURLY, iso, local_hour

SERVICE_CHANNELS = ("app", "web", "branch", "call_center", "chat", "email")
# channel -> (median wait s, sigma, median handle s, sigma, mean transfers, agents)
CHANNEL_NORMS: dict[str, tuple[float, float, float, float, float, int]] = {
    "call_center": (10.0, 0.9, 240.0, 0.6, 0.35, 80),
    "chat": (8.0, 0.8, 420.0, 0.6, 0.25, 40),
    "app": (3.0, 0.7, 90.0, 0.6, 0.05, 0),
    "web": (5.0, 0.7, 120.0, 0.6, 0.05, 0),
    "email": (3 * 3600.0, 0.8, 600.0, 0.6, 0.15, 20),
    "branch": (360.0, 0.6, 900.0, 0.5, 0.15, 60),
}
OUTAGE_CHANNELS = (("call_center", 0.45), ("chat", 0.25), ("app", 0.2), ("web", 0.1))
_RESOLVE_BASE = {
    "inquiry": 0.92,
    "complaint": 0.55,
    "transaction_support": 0.82,
    "account_service": 0.86,
    "advisory": 0.9,
}
_LOAD_CHANNELS = frozenset({"call_center", "chat"})
MAX_WAIT_S = 6 * 86400.0


def csat_score(
    *,
    wait_ratio: float,
    resolved: bool,
    transfers: int,
    sentiment: float,
    skill: float,
    mood: float,
    complaint: bool,
    noise: float,
) -> int:
    """Integer CSAT 1..5 from the drivers of satisfaction (``wait_ratio`` = wait / channel norm)."""
    z = (
        3.4
        + (0.8 if resolved else -0.5)
        - 0.4 * transfers
        - 0.55 * max(min(math.log(max(wait_ratio, 1e-3)), 3.0), -2.0)
        + 1.0 * sentiment
        + 0.6 * skill
        + 0.5 * mood
        - (0.4 if complaint else 0.0)
        + noise
    )
    return int(min(max(round(z), 1), 5))


@dataclass
class Outage:
    """One service-channel outage window (simulated)."""

    channel: str
    start_ms: int
    end_ms: int
    wait_factor: float
    instance: int = -1
    event_ids: list[str] = field(default_factory=list)


class Outages:
    """Non-overlapping outage windows, looked up by time and channel."""

    def __init__(self, outages: list[Outage]) -> None:
        self.items = sorted(outages, key=lambda o: o.start_ms)
        self._starts = [o.start_ms for o in self.items]

    def active(self, ms: int) -> Outage | None:
        i = bisect.bisect_right(self._starts, ms) - 1
        if i >= 0 and ms < self.items[i].end_ms:
            return self.items[i]
        return None


class InteractionFactory:
    """Builds interaction dicts and their latent CSAT."""

    def __init__(self, rng: random.Random, seed: int, outages: Outages) -> None:
        self.rng = rng
        self.seed = seed
        self.outages = outages
        self._n = 0
        self._complaints = 0
        self.skill: dict[str, list[float]] = {
            ch: [rng.gauss(0.0, 0.35) for _ in range(norm[5])] for ch, norm in CHANNEL_NORMS.items()
        }
        self._type_cw = {seg: list(_accumulate(w)) for seg, w in INTERACTION_MIX.items()}

    def new_id(self) -> str:
        eid = f"i-{self.seed}-{self._n}"
        self._n += 1
        return eid

    def pick_channel(self, c: Customer) -> str:
        names, cw = c.service_cw
        return names[bisect.bisect_left(cw, self.rng.random() * cw[-1])]

    def build(
        self,
        c: Customer,
        ms: int,
        *,
        channel: str | None = None,
        interaction_type: str | None = None,
        ref_event_id: str | None = None,
    ) -> tuple[dict[str, object], int]:
        """One interaction dict at ``ms`` plus its latent CSAT (1..5)."""
        rng = self.rng
        gauss = rng.gauss
        ch = channel or self.pick_channel(c)
        outage = self.outages.active(ms)
        down = outage is not None and outage.channel == ch
        itype = interaction_type
        if itype is None:
            cw = self._type_cw[c.segment]
            itype = INTERACTION_TYPES[bisect.bisect_left(cw, rng.random() * cw[-1])]
            if down and itype != "complaint" and rng.random() < 0.25:
                itype = "complaint"
        complaint = itype == "complaint"
        wait_med, wait_sig, handle_med, handle_sig, mean_tr, n_agents = CHANNEL_NORMS[ch]
        wait = wait_med * math.exp(gauss(0.0, wait_sig))
        if ch in _LOAD_CHANNELS:
            wait *= 0.5 + 0.6 * INDIVIDUAL_HOURLY[local_hour(ms)]
        if down:
            wait *= outage.wait_factor  # type: ignore[union-attr]
            mean_tr += 0.8
        wait = min(wait, MAX_WAIT_S)
        wait_ratio = wait / wait_med
        skill = 0.0
        agent = None
        if n_agents:
            k = int(rng.random() * n_agents)
            agent = f"agent-{ch}-{k:03d}"
            skill = self.skill[ch][k]
        handle = handle_med * math.exp(gauss(0.0, handle_sig) - 0.3 * skill)
        if complaint:
            handle *= 1.6
            mean_tr *= 1.8
        elif itype == "advisory":
            handle *= 1.5
        transfers = 0
        p = mean_tr / (1.0 + mean_tr)
        while transfers < 6 and rng.random() < p:
            transfers += 1
        p_res = _RESOLVE_BASE[itype] + 0.15 * skill - 0.12 * transfers
        if ch in ("app", "web"):
            p_res -= 0.08
        if down:
            p_res -= 0.35
        resolved = rng.random() < p_res
        sentiment = (
            0.3
            + (0.35 if resolved else -0.35)
            - 0.25 * max(min(math.log(max(wait_ratio, 1e-3)), 3.0), -2.0)
            - 0.15 * transfers
            - (0.4 if complaint else 0.0)
            - (0.3 if down else 0.0)
            + 0.3 * c.mood
            + gauss(0.0, 0.25)
        )
        sentiment = round(min(max(sentiment, -1.0), 1.0), 3)
        csat = csat_score(
            wait_ratio=wait_ratio,
            resolved=resolved,
            transfers=transfers,
            sentiment=sentiment,
            skill=skill,
            mood=c.mood,
            complaint=complaint,
            noise=gauss(0.0, 0.55),
        )
        d: dict[str, object] = {
            "event_id": self.new_id(),
            "ts": iso(ms),
            "customer_id": c.customer_id,
            "customer_type": c.customer_type,
            "segment": c.segment,
            "channel": ch,
            "interaction_type": itype,
            "wait_seconds": round(wait, 1),
            "handle_seconds": round(handle, 1),
            "resolved": resolved,
        }
        if rng.random() < 0.9:
            d["first_contact_resolution"] = resolved and transfers == 0 and rng.random() < 0.9
        if n_agents or transfers:
            d["transfers"] = transfers
        if agent is not None:
            d["agent_id"] = agent
        if rng.random() < 0.85:
            d["sentiment"] = sentiment
        if complaint:
            d["complaint_id"] = f"cmp-{self.seed}-{self._complaints}"
            self._complaints += 1
        if (
            ref_event_id is None
            and itype in ("transaction_support", "complaint")
            and (c.recent_txns and rng.random() < 0.7)
        ):
            ref_event_id = c.recent_txns[int(rng.random() * len(c.recent_txns))]
        if ref_event_id is not None:
            d["ref_event_id"] = ref_event_id
        return d, csat


def _accumulate(weights: tuple[float, ...]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out
