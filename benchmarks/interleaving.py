"""Users needed for 95% power: team-draft interleaving against an A/B test, from the simulator.

``loopml.experiments.simulate_rankers`` draws users (heavy-tailed number of queries, an
activity level each), queries with graded documents, two rankers of known quality (noisy
sorts of the true grades: ranker A's noise is 1.0, B's is larger) and a position-based
click model. For each setting it reports the users needed for 95% power at alpha = 0.05:

- interleaving: every user sees the team-draft list; per user +1/0/-1 by click credit;
  two-sided z-test that the mean is 0;
- A/B: half the users see A, half B; metric = clicks per user; Welch's z-test.

Sizes come from the normal approximation on the simulated per-user moments and are then
checked by simulating 2,000 experiments of exactly that size (the "power" columns).
Netflix reported interleaving needing over 100x fewer users than A/B for its rankers
(Netflix Tech Blog, 2017); the ratio depends on how much users differ in activity.

    python benchmarks/interleaving.py            # 60k users a setting, 6 settings
    python benchmarks/interleaving.py --quick    # 6k users, 2 settings
"""

from __future__ import annotations

import argparse
import sys
import time

from loopml.experiments import simulate_rankers, simulated_power, users_needed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small simulation, 2 settings")
    parser.add_argument("--users", type=int, default=None, help="users simulated a setting")
    args = parser.parse_args(argv)
    users = args.users or (6_000 if args.quick else 60_000)
    settings = [(1.3, 4.0), (1.3, 1.0)]
    if not args.quick:
        settings = [(1.1, 4.0), (1.3, 4.0), (1.6, 4.0), (1.3, 1.0), (1.3, 10.0), (1.1, 10.0)]
    print(f"{users:,} simulated users a setting; ranker A noise 1.0; 95% power, alpha 0.05")
    header = (
        f"{'B noise':>7} {'queries/user':>12} {'interleaving':>12} {'power':>6} "
        f"{'A/B':>9} {'power':>6} {'A/B / interleaving':>19}"
    )
    print(header)
    start = time.perf_counter()
    for noise_b, sessions in settings:
        sim = simulate_rankers(users, noise_b=noise_b, mean_sessions=sessions, seed=0)
        needs = users_needed(sim, power=0.95)
        power_i = simulated_power(sim, needs["interleaving"], design="interleaving", seed=1)
        power_ab = simulated_power(sim, needs["ab"], design="ab", seed=2)
        ratio = needs["ab"] / needs["interleaving"]
        print(
            f"{noise_b:7.1f} {sessions:12.0f} {needs['interleaving']:12,} {power_i:6.3f} "
            f"{needs['ab']:9,} {power_ab:6.3f} {ratio:19.1f}x"
        )
    print("reference: Netflix reported > 100x fewer users for interleaving than for A/B")
    print(f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
