"""Per-member cost of a vmapped update against group size: what batching can gain on this CPU.

``population.py`` measures what ``train_population`` gains over trials run one after another. This
script measures the most that batching the same trials with ``jax.vmap`` could gain, so that the
two can be compared.

It times the bare Greff update on one CPU device. That is the step that takes most of an epoch:
the vanilla LSTM with 88 inputs, one sequence of 128 steps, the sigmoid cross-entropy readout,
forward, backward and an SGD step. It is timed for g identical members vmapped together and
gives ``c_g(H)``, the milliseconds per member per update, for a grid of hidden sizes H and group
sizes g. ``c_1(H)`` is a trial trained alone.

It then takes the K = 32 trials of ``population.py`` (the same seed, so the same hidden sizes),
with each member's cost interpolated in H from the grid, and reports the batching ceiling,
sum_i c_1(H_i) / sum_i min_g c_g(H_i): every member in the group size that suits it best (of the
sizes measured), with no padding and no per-chunk pass over the data. Real buckets pad, and each
chunk makes its own pass over the data. It also prints twice that figure, what a second core
adding a full 2x to the population and nothing to the trials alone would give; measured, two
devices add 1.36x, and a trial alone already uses part of the second core (benchmarks/README.md).

``--pin`` keeps the process on one core before JAX starts, as ``population.py --processes`` pins its
workers, so the table is what each of two pinned processes pays. Two such processes share no
core, so the sum of their best-grouping costs, halved, estimates that layout; benchmarks/README.md
sets it against the trials alone as ``population.py`` runs them, unpinned.

Each cell of the table is the fastest of ``--repeats`` timed calls. The minimum is the statistic
least moved by other work on the machine; cells still move by tens of percent between runs, so
read the sums. Run it on a quiet machine.

    uv run python benchmarks/population_ceiling.py
    uv run python benchmarks/population_ceiling.py --pin      # one core, as a pinned worker
    uv run python benchmarks/population_ceiling.py --hidden 32 128 --groups 1 4 --repeats 20

The last line is ``batching_ceiling_k32=<x>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[20, 32, 50, 80, 128, 200],
        help="hidden sizes of the grid (must span the draws' [20, 200])",
    )  # fmt: skip
    parser.add_argument(
        "--groups", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="group sizes g"
    )
    parser.add_argument("--steps", type=int, default=128, help="sequence length (default 128)")
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per cell")
    parser.add_argument("--k", type=int, default=32, help="trials drawn as population.py does")
    parser.add_argument("--seed", type=int, default=0, help="population.py's draw seed")
    parser.add_argument(
        "--pin", action="store_true", help="run on one core, as population.py's pinned workers"
    )
    args = parser.parse_args()
    for name in ("steps", "repeats", "k"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("hidden", "groups"):
        if min(getattr(args, name)) < 1:
            parser.error(f"--{name}: sizes must be at least 1, got {min(getattr(args, name))}")
    if args.seed < 0:
        parser.error(f"--seed must be at least 0, got {args.seed}")
    # c_1(H), a trial alone, is what every gain divides: without it the first group stood in.
    if 1 not in args.groups:
        parser.error(f"--groups must include 1 (a trial alone, what the gains compare with), got "
                     f"{' '.join(map(str, args.groups))}")  # fmt: skip
    return args


def member_update_ms(hidden: int, group: int, steps: int, repeats: int) -> float:
    """Fastest of ``repeats`` calls of a g-member vmapped update, in ms per member."""
    import jax
    import jax.numpy as jnp
    import optax

    from lstm_variants.model import SequenceModel

    model = SequenceModel(cell="vanilla", hidden_size=hidden, output_size=88)
    inputs = (jax.random.uniform(jax.random.key(1), (group, 1, steps, 88)) < 0.1).astype(
        jnp.float32
    )
    targets = jnp.roll(inputs, -1, axis=2)
    lengths = jnp.full((group, 1), steps)

    def init(key):
        return model.init(key, inputs[0], lengths[0], parameters_only=True)

    params = jax.vmap(init)(jax.random.split(jax.random.key(0), group))

    def loss(p, x, y, n):
        logits = model.apply(p, x, n)
        return jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(logits, y), -1))

    def update(p, x, y, n):
        return jax.tree.map(lambda w, d: w - 1e-3 * d, p, jax.grad(loss)(p, x, y, n))

    step = jax.jit(jax.vmap(update))
    for _ in range(3):
        params = step(params, inputs, targets, lengths)
    jax.block_until_ready(params)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        params = step(params, inputs, targets, lengths)
        jax.block_until_ready(params)
        best = min(best, time.perf_counter() - started)
    return 1e3 * best / group


def main():
    args = parse_args()
    from population import greff_draws, pin_worker_to_core  # benchmarks/ is on the path

    if args.pin:
        pin_worker_to_core(0)
    # One device, as a trial trained alone gets; Eigen's threads off, as population.py sets them.
    import jax

    jax.config.update("jax_num_cpu_devices", 1)
    if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = flags.strip()
    import numpy as np

    hidden = sorted(args.hidden)
    groups = sorted(args.groups)
    sizes = [draw["hidden_size"] for draw in greff_draws(args.k, args.seed)]
    if min(sizes) < hidden[0] or max(sizes) > hidden[-1]:
        print(
            f"population_ceiling.py: error: --hidden must span the draws' sizes "
            f"{min(sizes)} to {max(sizes)}; got {hidden[0]} to {hidden[-1]}",
            file=sys.stderr,
        )
        sys.exit(2)  # a usage error, as argparse's
    print(
        f"vanilla LSTM, 88 inputs, batch 1, {args.steps} steps, forward + backward + SGD; "
        f"1 {jax.devices()[0].device_kind} device"
        f"{', pinned to one core' if args.pin else ''}; jax {jax.__version__}",
        file=sys.stderr,
    )
    cost = np.zeros((len(hidden), len(groups)))
    for i, h in enumerate(hidden):
        for j, g in enumerate(groups):
            cost[i, j] = member_update_ms(h, g, args.steps, args.repeats)
            print(f"  H={h} g={g}: {cost[i, j]:.3f} ms per member", file=sys.stderr)

    print("\nms per member per update (fastest call), by hidden size H and group size g:\n")
    print("| H | " + " | ".join(f"g = {g}" for g in groups) + " | best g | gain at best g |")
    print("|--:|" + "--:|" * len(groups) + "--:|--:|")
    for i, h in enumerate(hidden):
        best = int(np.argmin(cost[i]))
        cells = " | ".join(f"{c:.3f}" for c in cost[i])
        print(f"| {h} | {cells} | {groups[best]} | {cost[i, 0] / cost[i, best]:.2f} |")

    def interpolate(column: np.ndarray) -> np.ndarray:
        return np.interp(sizes, hidden, column)

    alone = interpolate(cost[:, 0]).sum()
    at_best = interpolate(cost.min(axis=1)).sum()
    batching = alone / at_best
    print(
        f"\nK = {args.k} draws (hidden {min(sizes)} to {max(sizes)}, median "
        f"{int(np.median(sizes))}): {alone:.1f} ms per update of all members alone, "
        f"{at_best:.1f} ms with every member in its best group size"
    )
    print(
        f"batching ceiling {batching:.2f}x; twice that, as if a second core added a full 2x: "
        f"{2 * batching:.2f}x (the issue's target: 3x)"
    )
    print(f"batching_ceiling_k{args.k}={batching:.2f}")


if __name__ == "__main__":
    main()
