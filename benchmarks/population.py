"""Trial-epochs per second: a population of K trials in one program against K trials in a row.

Greff-shaped trials on the real JSB Chorales (input 88, one sequence per update, real sequence
lengths, SGD with Nesterov momentum): hidden size log-uniform in [20, 200], learning rate
log-uniform in [1e-6, 1e-2], momentum 1 - log-uniform in [0.01, 1], input noise uniform in [0, 1].
For each K the same K trials are trained

- as one population (``population.train_population``: vmapped, sharded over the local devices,
  mixed hidden sizes padded into buckets and masked), and
- one after another in this process (``population.train_run``, each jitted on its own),

for ``--epochs`` epochs each (patience is set so nobody stops early; a diverging trial stops in
both). A trial-epoch is one epoch of training plus its validation pass; the rate counts the epochs
the trials ran over the seconds spent in epochs, leaving out parameter initialisation and
compilation, which are reported in their own columns. Each run is made both ways: first
cold (no compiled program kept from an earlier run, ``population.forget_compiled`` and
``jax.clear_caches``), then warm
(``--repeats`` times; the median counts, and the spread is printed as it goes).
The epoch seconds are the warm run's: the cold run's epochs also compile the small programs the
epoch loop runs beside the epoch program (selecting the best parameters, the epoch's keys), once
per new hidden size, which would charge the sequential trials a compile per trial and a
population one per chunk. The set-up columns are the cold run's seconds beyond the warm run's
epochs: initialisation and every compile, so what a fresh process pays. The populations are nested (the first K of
128 draws) and the sequential runs are measured once on the first ``--sequential`` (32): a row
of K up to that many uses its own K trials; a larger K adds each other trial's epochs at the
seconds per trial-epoch fitted over the timed ones against its size (``sequential_seconds``), as
the first 32 draws are smaller than the 128. The script ends with ``speedup_k32=<x>``.

With ``--processes P`` each K is also trained as P populations side by side, one per process, each
process pinned to its own core with one device (members 0, P, 2P, ... in the first, 1, P+1, ... in
the second), which is what a study gets from ``search.shards=P 'search.shard=range(P)'
launcher=joblib``. Their rate counts all K members' trial-epochs over the epoch seconds of the
slowest process, and the script then ends with ``speedup_k32_processes=<y>`` as well.

    uv run python benchmarks/population.py                    # K = 1, 8, 32, 128, one epoch
    uv run python benchmarks/population.py --k 8 32 --sequences 64
    uv run python benchmarks/population.py --k 32 --processes 2
    uv run python benchmarks/population.py --k 32 --repeats 3 # median of 3 warm runs each

Needs JSB Chorales in ``$LSTM_VARIANTS_DATA_DIR`` (or downloads it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--k", type=int, nargs="+", default=[1, 8, 32, 128], help="population sizes"
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    parser.add_argument(
        "--sequences", type=int, default=0, help="train on the first N chorales (default: all 229)"
    )
    parser.add_argument("--sequential", type=int, default=32, help="trials timed one by one")
    parser.add_argument(
        "--devices", type=int, default=0, help="CPU devices to simulate (default: one per core)"
    )
    parser.add_argument(
        "--length-buckets", type=int, default=1, help="train.length_buckets (default 1: pad to 128)"
    )
    parser.add_argument(
        "--max-padding-waste", type=float, default=0.5, help="train.max_padding_waste (default 0.5)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="also train each K split over this many processes, one pinned core each (default 1: not)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="warm runs per population and per sequential trial; their median epoch time counts "
        "(default 1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    # One process of a --processes run (started by this script; prints one JSON line).
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("processes", "epochs", "sequential", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if min(args.k) < 1:
        parser.error(f"--k: population sizes must be at least 1, got {min(args.k)}")
    # Each K once: a second K = 32 row trained it again and was read as the processes' row.
    args.k = list(dict.fromkeys(args.k))
    for name in ("sequences", "devices", "seed"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be at least 0 (0: the default), got {getattr(args, name)}")
    if args.length_buckets < 1:
        parser.error(
            f"--length-buckets must be at least 1 (1: pad to 128), got {args.length_buckets}"
        )
    # The range train.max_padding_waste has in a config; 'not <=' refuses nan as well.
    if not 0 <= args.max_padding_waste <= 1:
        parser.error(f"--max-padding-waste must be in [0, 1], got {args.max_padding_waste}")
    return args


def greff_draws(k: int, seed: int) -> list[dict]:
    """The first k trials of Greff's space, drawn in order from ``seed`` (``Member`` fields)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        {
            "hidden_size": int(round(np.exp(rng.uniform(np.log(20), np.log(200))))),
            "seed": i,
            "learning_rate": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-2)))),
            "momentum": float(1 - np.exp(rng.uniform(np.log(0.01), np.log(1.0)))),
            "input_noise": float(rng.uniform(0, 1)),
        }
        for i in range(k)
    ]


def pin_worker_to_core(worker: int) -> None:
    """Keep this process on one core before JAX starts its thread pool, which is then sized for it."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[worker % len(cores)]})


def population_totals(results) -> dict:
    """Trial-epochs, epoch seconds, setup seconds and buckets of one ``train_population`` call.

    Members of one chunk share its timings, so each chunk (padded size, wall time) counts once.
    """
    chunks = {(r.population["padded_hidden_size"], r.wall_seconds): r for r in results}
    return {
        "epochs": sum(r.metrics["epochs_run"] for r in results),
        "member_epochs": [r.metrics["epochs_run"] for r in results],
        "epochs_seconds": sum(r.population["epochs_seconds"] for r in chunks.values()),
        "setup_seconds": sum(
            r.population["init_seconds"] + r.compile_seconds for r in chunks.values()
        ),
        "buckets": len({r.population["padded_hidden_size"] for r in chunks.values()}),
    }


def trial_epoch_fit(work, seconds_per_epoch) -> tuple[float, float]:
    """(a, b) of t(w) = a + b w, least squares: a timed trial's seconds per trial-epoch against its
    step work w = h(D + h) (``hidden_padding.step_work``). a holds what does not grow with the
    products (each update's and pass's overhead), b the products. With fewer than two distinct
    w there is no slope: (mean t, 0)."""
    import numpy as np

    if len(set(work)) < 2:
        return float(np.mean(seconds_per_epoch)), 0.0
    slope, intercept = np.polyfit(np.asarray(work, float), np.asarray(seconds_per_epoch, float), 1)
    return float(intercept), float(slope)


def sequential_seconds(timed: list[dict], fit: tuple[float, float], work, epochs) -> float:
    """Epoch seconds of K trials one after another, of which the first ``len(timed)`` were timed.

    A timed trial counts its own warm epoch seconds. Each other trial i, of step work w_i running
    e_i epochs (its population member's), counts e_i (a + b w_i), with ``fit`` = (a, b) fitted
    over the timed trials (``trial_epoch_fit``). The timed trials' mean alone would stand for the
    rest only if their sizes were mixed alike, and the draws' are not: by session 29's per-bucket
    times, the first 32 of the 128 (median hidden size 55 against 72) take about 16 % less per
    trial-epoch than the 128, which flattered the trials alone at K = 128, and the first 8 (median
    92) about 35 % more than the first 32, which flattered the population at K = 32.
    """
    a, b = fit
    rest = zip(work[len(timed) :], epochs[len(timed) :], strict=True)
    return sum(t["epochs_seconds"] for t in timed) + sum(e * (a + b * w) for w, e in rest)


def cold_then_warm(train, repeats: int = 1) -> dict:
    """``train()``'s totals (``population_totals``) run cold, then ``repeats`` times warm: the
    warm runs' epochs and median epoch seconds, and as set-up the cold run's seconds beyond that
    median (module docstring)."""
    import jax

    from lstm_variants.population import forget_compiled

    # JAX's own caches too: member_init compiles its pieces once per hidden size, and without
    # this a population found those of every size its sequential trials had (init 0.6 s, not 13 s,
    # for 4 members), so its set-up was not a fresh process's.
    forget_compiled()
    jax.clear_caches()
    started = time.perf_counter()
    cold = population_totals(train())
    wall = time.perf_counter() - started
    # Printed now: a run cut off by a time limit during its warm runs still leaves this.
    print(
        f"    cold run: {cold['epochs']} trial-epochs, {cold['epochs_seconds']:.2f}s in epochs, "
        f"{cold['setup_seconds']:.1f}s initialising and compiling, wall {wall:.1f}s",
        file=sys.stderr,
    )
    warm = [population_totals(train()) for _ in range(repeats)]
    seconds = sorted(run["epochs_seconds"] for run in warm)
    median = statistics.median(seconds)
    cold_seconds = cold["setup_seconds"] + cold["epochs_seconds"]
    return warm[0] | {
        "epochs_seconds": median,
        "epochs_seconds_range": (seconds[0], seconds[-1]),
        "setup_seconds": cold_seconds - median,
        "wall_seconds": wall,
    }


def run_workers(k: int, args) -> dict:
    """Train the first K draws as ``args.processes`` pinned populations at once; their totals."""
    command = [sys.executable, os.path.abspath(__file__), "--k", str(k), "--devices", "1"]
    for flag in ("epochs", "sequences", "length_buckets", "max_padding_waste", "repeats", "seed"):
        command += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    command += ["--processes", str(args.processes)]
    workers = [
        subprocess.Popen(command + ["--worker", str(i)], stdout=subprocess.PIPE, text=True)
        for i in range(args.processes)
    ]
    outputs = [worker.communicate()[0] for worker in workers]
    if any(worker.returncode for worker in workers):
        sys.exit(f"population.py: error: a --processes worker failed for K={k} (see above)")
    results = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    return {
        "epochs": sum(r["epochs"] for r in results),
        "epochs_seconds": max(r["epochs_seconds"] for r in results),
        "setup_seconds": max(r["setup_seconds"] for r in results),
        "buckets": sum(r["buckets"] for r in results),
        "wall_seconds": max(r["wall_seconds"] for r in results),
        "epochs_seconds_range": (
            max(r["epochs_seconds_range"][0] for r in results),
            max(r["epochs_seconds_range"][1] for r in results),
        ),
    }


def spread(totals: dict) -> str:
    """' (warm min-max)' of the epoch seconds when there were several warm runs, else ''."""
    low, high = totals["epochs_seconds_range"]
    return f" (warm {low:.2f}-{high:.2f})" if high > low else ""


def main():
    args = parse_args()
    if args.worker is not None:
        pin_worker_to_core(args.worker)
    # JAX reads these once, at start-up: one simulated device per core, and no Eigen threads
    # fighting over the same cores inside each device's small products. The cores this process
    # may run on (taskset's, a container's), as the lstm-variants command counts them, not the
    # machine's: under taskset -c 0 the population had two devices on one core.
    import jax

    if jax.config.jax_platforms in (None, "", "cpu") and not os.environ.get("CUDA_VISIBLE_DEVICES"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        jax.config.update("jax_num_cpu_devices", args.devices or cores or 1)
        if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
            flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            os.environ["XLA_FLAGS"] = flags.strip()

    import dataclasses

    from lstm_variants.data import DataError, load_dataset
    from lstm_variants.model import SequenceModel
    from lstm_variants.optimizers import make_member_optimizer
    from lstm_variants.population import Member, train_population, train_run
    from lstm_variants.train import TrainSettings

    try:
        data = load_dataset("jsb_chorales", data_dir=os.environ.get("LSTM_VARIANTS_DATA_DIR"))
    except DataError as error:  # one line, not a traceback: the message says where to put it
        sys.exit(f"population.py: error: {error}")
    if args.sequences:
        train = data.train
        subset = dataclasses.replace(
            train,
            inputs=train.inputs[: args.sequences],
            targets=train.targets[: args.sequences],
            lengths=train.lengths[: args.sequences],
        )
        data = dataclasses.replace(data, train=subset)
    draws = max(args.k)
    members = [Member(**draw) for draw in greff_draws(draws, args.seed)]
    model = SequenceModel(cell="vanilla", hidden_size=members[0].hidden_size, output_size=88)
    optimizer = make_member_optimizer({"name": "sgd", "nesterov": True})
    settings = TrainSettings(
        max_epochs=args.epochs,
        patience=args.epochs + 1,
        batch_size=1,
        eval_batch_size=128,
        length_buckets=args.length_buckets,
        max_padding_waste=args.max_padding_waste,
    )
    devices = jax.local_devices()
    print(
        f"JSB Chorales: {data.train.num_sequences} train sequences of up to "
        f"{data.train.inputs.shape[1]} steps, batch 1, {args.epochs} epoch(s); "
        f"{len(devices)} {devices[0].device_kind} device(s); jax {jax.__version__}",
        file=sys.stderr,
    )

    if args.worker is not None:
        share = members[: args.k[0]][args.worker :: args.processes]
        totals = cold_then_warm(lambda: train_population(
            model, optimizer, data, settings, share, progress=False,
            log=lambda line: print(f"  worker {args.worker}: " + line, file=sys.stderr),
        ) if share else [], args.repeats)  # fmt: skip
        print(json.dumps(totals))
        return

    sequential = []
    for member in members[: min(args.sequential, draws)]:
        totals = cold_then_warm(
            lambda member=member: [
                train_run(model, optimizer, data, settings, member, progress=False)
            ],
            args.repeats,
        )
        sequential.append(totals)
        print(
            f"  sequential trial {len(sequential)}/{min(args.sequential, draws)}: hidden "
            f"{member.hidden_size}, {totals['epochs_seconds']:.2f}s in epochs"
            f"{spread(totals)}, set-up "
            f"{totals['setup_seconds']:.2f}s",
            file=sys.stderr,
        )

    from lstm_variants.hidden_padding import step_work

    work = [step_work(m.hidden_size, data.input_size, model.num_layers) for m in members]
    rows = []
    for k in args.k:
        together = cold_then_warm(lambda k=k: train_population(
            model, optimizer, data, settings, members[:k], progress=False,
            log=lambda line: print("  " + line, file=sys.stderr),
        ), args.repeats)  # fmt: skip
        # Trials past the timed ones: estimated from their sizes (sequential_seconds).
        timed = sequential[: min(k, len(sequential))]
        epochs = [t["epochs"] for t in timed] + together["member_epochs"][len(timed) :]
        fit = trial_epoch_fit(
            work[: len(timed)], [t["epochs_seconds"] / t["epochs"] for t in timed]
        )
        seq_rate = sum(epochs) / sequential_seconds(timed, fit, work[:k], epochs)
        seq_setup = sum(t["setup_seconds"] for t in timed)
        if k > len(timed):
            a, b = fit
            print(
                f"  K={k}: sequential rate from {len(timed)} timed trials and {k - len(timed)} "
                f"estimated from their sizes, {a:.4f} + {b:.3g} h(D + h) s per trial-epoch",
                file=sys.stderr,
            )
        layouts = [(f"1 process, {len(devices)} device(s)", together)]
        if args.processes > 1:
            layouts.append((f"{args.processes} processes, pinned", run_workers(k, args)))
        for layout, totals in layouts:
            pop_rate = totals["epochs"] / totals["epochs_seconds"]
            rows.append(
                {
                    "K": k,
                    "layout": layout,
                    "buckets": totals["buckets"],
                    "population trial-epochs/s": pop_rate,
                    "sequential trial-epochs/s": seq_rate,
                    "speedup": pop_rate / seq_rate,
                    "population setup s": totals["setup_seconds"],
                    "sequential setup s/trial": seq_setup / len(timed),
                    "population wall s (cold)": totals["wall_seconds"],
                }
            )
            print(
                f"  K={k}, {layout}: {pop_rate:.3f} vs {seq_rate:.3f} trial-epochs/s (population "
                f"epochs {totals['epochs_seconds']:.2f}s{spread(totals)}); population setup "
                f"{totals['setup_seconds']:.1f}s, wall {totals['wall_seconds']:.1f}s",
                file=sys.stderr,
            )

    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for row in rows:
        print(
            "| "
            + " | ".join(
                f"{value:.3f}" if isinstance(value, float) else str(value) for value in row.values()
            )
            + " |"
        )
    k32 = [row["speedup"] for row in rows if row["K"] == 32]
    print(f"speedup_k32={k32[0]:.2f}" if k32 else "speedup_k32=n/a (run with --k 32)")
    if len(k32) > 1:
        print(f"speedup_k32_processes={k32[1]:.2f}")


if __name__ == "__main__":
    main()
