"""Training throughput of our LSTM against flax.linen's OptimizedLSTMCell and PyTorch's nn.LSTM.

The JSB Chorales shape by default: 88 binary inputs, H = 128 hidden units, batch 16, 128 time steps,
float32; one training step is forward + backward + Adam update of a one-layer LSTM with a dense
readout of 88 logits and a sigmoid binary cross-entropy (summed over the 88 notes, averaged over the
valid frames). Rows: ours with the default recurrence (``recurrence='fast'``: on the CPU the
native LSTM kernel, ``lstm_variants.native_lstm``), with the ``lax.scan`` and custom VJP that
runs where the kernel does not (``recurrence='xla'``) and, for vanilla, with the plain ``lax.scan``
autodiff (``recurrence='reference'``), for Greff's vanilla LSTM (with peepholes) and for 'np' (no
peepholes, the same equations as flax and torch), flax ``nn.RNN(OptimizedLSTMCell)`` +
``nn.Dense``, and torch ``nn.LSTM`` + ``nn.Linear`` with ``torch.set_num_threads(<cores>)`` (the
cores this process may use: ``os.sched_getaffinity``). Every row gets three untimed steps first.

Before checking speed it checks that each fast path and the reference give the same loss and
gradients (max relative difference, must be < 1e-4 in float32) on a padded variable-length batch.

Process-wide settings, made here before JAX is imported because JAX reads them once at start-up:

* ``jax_num_cpu_devices = --devices`` (default 1: one device, as ``lstm-variants`` trains a
  single run and as a user of ``flax.linen.RNN`` would). A recurrence at this shape is latency
  bound: one step's 16 x 128 by 128 x 512 product takes ~20 us, too little to split across cores
  inside the product, so the second core is only useful for an independent slice of the batch.
  On one device the native kernel runs the two halves of the batch on two threads, its own and
  one of XLA's pool (``lstm_variants/native/lstm_recurrence.cc``), and XLA's pool spreads the
  other operations over the cores. ``--devices 2`` splits the batch over two simulated CPU
  devices instead, with ``lstm_variants.data_parallel`` (one all-reduce of the gradients after
  the backward pass); since session 28 that is slower here (``benchmarks/README.md``). The flax
  row runs on one device and ``vs flax`` compares with it; with ``--devices`` N > 1 a second flax
  row, ``flax on N devices``, gets the same data parallelism as ours, and the line before the
  last compares ours with it.
* ``XLA_FLAGS += --xla_cpu_multi_thread_eigen=false`` (unless XLA_FLAGS already mentions it): the
  products are too small for Eigen's intra-op threads, whose hand-offs cost more than they save
  (``lstm-variants`` sets the same). ``--keep-xla-flags`` turns this off.

Run::

    uv run python benchmarks/cell_throughput.py            # the JSB shape
    uv run python benchmarks/cell_throughput.py --steps 20 --repeats 3 --hidden 64

The last line is ``vs_flax=<x> vs_torch=<y>``: steps/s of ours (vanilla, fast) over flax's and
over torch's (``nan`` when torch is not installed).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

TORCH_HINT = "python3 -m pip --python .venv/bin/python install torch==2.13.0"
NUM_INPUTS = 88


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="training steps per timed repeat")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats (the median is reported)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units H")
    p.add_argument("--batch", type=int, default=16, help="sequences per batch")
    p.add_argument("--length", type=int, default=128, help="time steps T")
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="simulated CPU devices to split our step's batch over (default 1)",
    )
    p.add_argument(
        "--flax-devices",
        type=int,
        default=1,
        help="devices for the flax baseline's data-parallel step (default 1)",
    )
    p.add_argument("--unroll", type=int, default=1, help="time steps per compiled loop iteration")
    p.add_argument(
        "--keep-xla-flags",
        action="store_true",
        help="do not add --xla_cpu_multi_thread_eigen=false to XLA_FLAGS",
    )
    p.add_argument("--no-torch", action="store_true", help="skip the torch row")
    p.add_argument(
        "--torch-device", default="cpu", help="where torch runs: cpu (default) or cuda (on a GPU)"
    )
    args = p.parse_args(argv)
    for name in ("steps", "repeats", "hidden", "batch", "length", "unroll", "flax_devices"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.devices < 1:
        p.error(f"--devices must be at least 1, got {args.devices}")
    if args.batch % args.flax_devices:
        p.error(f"--flax-devices {args.flax_devices} must divide --batch {args.batch}")
    while args.batch % args.devices:
        args.devices -= 1
    return args


def cores() -> int:
    """The cores this process may run on (a container's or taskset's, not the machine's)."""
    return len(os.sched_getaffinity(0))


ARGS = parse_args()
if not ARGS.keep_xla_flags and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", max(ARGS.devices, ARGS.flax_devices))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import linen as nn  # noqa: E402

from lstm_variants.data_parallel import data_parallel_value_and_grad  # noqa: E402
from lstm_variants.model import SequenceModel, step_mask  # noqa: E402


def make_batch(rng: np.random.Generator, batch: int, length: int, padded: bool):
    """Random piano rolls (B, T+1, 88); inputs are frames 0..T-1, targets frames 1..T."""
    roll = (rng.random((batch, length + 1, NUM_INPUTS)) < 0.05).astype(np.float32)
    if padded:
        lengths = rng.integers(1, length + 1, size=batch)
        lengths[0] = length
    else:
        lengths = np.full(batch, length)
    valid = np.arange(length + 1)[None, :] < (lengths[:, None] + 1)
    roll = roll * valid[..., None]
    return {
        "inputs": jnp.asarray(roll[:, :-1]),
        "targets": jnp.asarray(roll[:, 1:]),
        "lengths": jnp.asarray(lengths, jnp.int32),
    }


def frames(batch) -> jax.Array:
    return batch["lengths"].sum()


def bce_loss(logits, batch):
    """Sigmoid BCE summed over the notes, averaged over the valid frames."""
    mask = step_mask(batch["lengths"], logits.shape[1])
    per_frame = optax.sigmoid_binary_cross_entropy(logits, batch["targets"]).sum(-1)
    return jnp.where(mask, per_frame, 0.0).sum() / jnp.maximum(mask.sum(), 1)


def jax_trainer(model, variables, devices: int):
    """(jitted step, state): one forward + backward + Adam update."""
    optimizer = optax.adam(1e-3)

    def loss_fn(params, batch):
        logits = model.apply({"params": params}, batch["inputs"], batch["lengths"])
        return bce_loss(logits, batch)

    value_and_grad = data_parallel_value_and_grad(loss_fn, devices, weight_fn=frames)

    @jax.jit
    def step(state, batch):
        params, opt_state = state
        loss, grads = value_and_grad(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    params = variables["params"]
    return step, (params, optimizer.init(params)), value_and_grad


class FlaxLSTM(nn.Module):
    hidden: int
    unroll: int = 1  # --unroll applies to every JAX row alike

    @nn.compact
    def __call__(self, inputs, lengths):
        rnn = nn.RNN(nn.OptimizedLSTMCell(self.hidden), unroll=self.unroll)
        hidden = rnn(inputs, seq_lengths=lengths)
        return nn.Dense(NUM_INPUTS)(hidden)


def place_batch(batch, devices: int):
    """Put the batch where the step reads it, once, as the trainer does for a whole epoch.

    Passing a one-device array to a step that splits the batch over ``devices`` makes every call
    re-shard it first (measured: ~1.5 ms per leaf per call under load, work torch does not do).
    """
    if devices == 1:
        return batch
    from jax.sharding import NamedSharding, PartitionSpec

    from lstm_variants.data_parallel import AXIS, data_mesh

    return jax.device_put(batch, NamedSharding(data_mesh(devices), PartitionSpec(AXIS)))


def jax_runner(step, state, batch):
    """Compile, then return ``run(steps) -> seconds per step`` (the state carries over).

    Three untimed steps, as torch gets: the first compiles for the initial state, and on several
    devices the state it returns is replicated over them, a new input sharding that the second
    step compiles again. Timing from the first call would put that compile in a timed repeat.
    """
    for _ in range(3):
        state, loss = step(state, batch)
    jax.block_until_ready((state, loss))
    holder = [state]

    def run(steps: int) -> float:
        state = holder[0]
        start = time.perf_counter()
        for _ in range(steps):
            state, loss = step(state, batch)
        jax.block_until_ready((state, loss))
        holder[0] = state
        return (time.perf_counter() - start) / steps

    return run


def torch_runner(args, batch_np, threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class TorchLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(NUM_INPUTS, args.hidden, batch_first=True)
            self.readout = torch.nn.Linear(args.hidden, NUM_INPUTS)

        def forward(self, x):
            return self.readout(self.lstm(x)[0])

    device = torch.device(args.torch_device)
    model = TorchLSTM().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(np.array(batch_np["inputs"])).to(device)  # a writable copy
    y = torch.from_numpy(np.array(batch_np["targets"])).to(device)
    # CUDA calls return before the GPU is done: time up to the end of the work, as JAX's rows do.
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    n_frames = float(np.asarray(batch_np["lengths"]).sum())

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y) / n_frames
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    sync()

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return (time.perf_counter() - start) / steps

    return run


def max_relative_difference(a, b) -> float:
    """The largest relative difference over the leaves; inf where either side is not finite (a NaN
    in padded steps is what a broken custom VJP gives, and max() would drop it)."""

    def rel(x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            return math.inf
        return float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30))

    return max(jax.tree.leaves(jax.tree.map(rel, a, b)))


def check_against_reference(args, cell: str, fast: str) -> float:
    """Loss and gradients of a fast path vs the plain scan, padded batch, all devices."""
    batch = make_batch(np.random.default_rng(1), args.batch, args.length, padded=True)
    results = []
    for recurrence in (fast, "reference"):
        model = SequenceModel(
            cell, args.hidden, NUM_INPUTS, recurrence=recurrence, unroll=args.unroll
        )
        params = model.init(jax.random.key(0), batch["inputs"], batch["lengths"])["params"]
        _, _, value_and_grad = jax_trainer(model, {"params": params}, args.devices)
        results.append(jax.jit(value_and_grad)(params, batch))
    (loss_f, grads_f), (loss_r, grads_r) = results
    return max_relative_difference((loss_f, grads_f), (loss_r, grads_r))


def fit_to_devices(args) -> None:
    """Fewer devices where JAX has fewer (one GPU: --devices 2 falls back to 1);
    a torch device that is not there is an error now, not after the JAX rows."""
    available = len(jax.devices())
    if args.flax_devices > available:
        sys.exit(f"cell_throughput.py: error: --flax-devices {args.flax_devices}, but JAX has "
                 f"{available} {jax.devices()[0].device_kind} device(s)")  # fmt: skip
    while args.devices > available or args.batch % args.devices:
        args.devices -= 1
    if args.torch_device.startswith("cuda") and not args.no_torch:
        try:
            import torch
        except ImportError:
            return
        if not torch.cuda.is_available():
            sys.exit(f"cell_throughput.py: error: --torch-device {args.torch_device}, but torch "
                     "sees no CUDA device; use --torch-device cpu")  # fmt: skip


def main(args) -> None:
    fit_to_devices(args)
    print(
        f"jax {jax.__version__}, {len(jax.devices())} {jax.devices()[0].device_kind} device(s), "
        f"{cores()} cores, torch on {args.torch_device}, "
        f"XLA_FLAGS='{os.environ.get('XLA_FLAGS', '')}'"
    )
    print(
        f"shape: inputs {NUM_INPUTS}, hidden {args.hidden}, batch {args.batch}, length {args.length}, "
        f"float32; our step on {args.devices} device(s), flax on {args.flax_devices}; "
        f"median of {args.repeats} x {args.steps} steps, "
        "repeats interleaved across rows"
    )
    worst = 0.0
    for cell in ("vanilla", "np"):
        for recurrence in ("fast", "xla"):
            diff = check_against_reference(args, cell, recurrence)
            worst = max(worst, diff)
            print(
                f"check {cell}: {recurrence} vs reference max relative difference (loss, grads) "
                f"= {diff:.2e}"
            )
    if not worst < 1e-4:  # NaN fails too
        sys.exit(f"FAILED: a fast path and the reference differ by {worst:.2e} >= 1e-4")

    batch = make_batch(np.random.default_rng(0), args.batch, args.length, padded=False)
    runners = {}
    for cell, recurrences in (("vanilla", ("fast", "xla", "reference")), ("np", ("fast", "xla"))):
        for recurrence in recurrences:
            model = SequenceModel(
                cell, args.hidden, NUM_INPUTS, recurrence=recurrence, unroll=args.unroll
            )
            variables = model.init(jax.random.key(0), batch["inputs"], batch["lengths"])
            step, state, _ = jax_trainer(model, variables, args.devices)
            runners[f"ours {cell} {recurrence}"] = jax_runner(
                step, state, place_batch(batch, args.devices)
            )
    flax_model = FlaxLSTM(args.hidden, args.unroll)
    variables = flax_model.init(jax.random.key(0), batch["inputs"], batch["lengths"])
    step, state, _ = jax_trainer(flax_model, variables, args.flax_devices)
    runners["flax OptimizedLSTMCell"] = jax_runner(
        step, state, place_batch(batch, args.flax_devices)
    )
    # The same data parallelism as ours: what of our speed-up the second device alone gives.
    same = f"flax on {args.devices} devices"
    if args.devices > 1 and args.flax_devices == 1:
        step, state, _ = jax_trainer(flax_model, variables, args.devices)
        runners[same] = jax_runner(step, state, place_batch(batch, args.devices))
    try:
        runners["torch nn.LSTM"] = None if args.no_torch else torch_runner(args, batch, cores())
    except ImportError as error:  # a partial install (e.g. torch without sympy) counts as missing
        print(f"torch unusable: {error}")
        runners["torch nn.LSTM"] = None
    # Round-robin: repeat r of every implementation runs before repeat r + 1 of any, so a change
    # in the machine's load (other processes on the same cores) hits all rows alike.
    rows: dict[str, list[float] | None] = {k: ([] if r else None) for k, r in runners.items()}
    for _ in range(args.repeats):
        for name, run in runners.items():
            if run is not None:
                rows[name].append(run(args.steps))

    median = {k: statistics.median(v) for k, v in rows.items() if v}
    flax_t, torch_t = median["flax OptimizedLSTMCell"], median.get("torch nn.LSTM")
    print(f"\n| {'implementation':26} | steps/s | ms/step (min-max) | vs flax | vs torch |")
    print(f"|{'-' * 28}|--------:|------------------:|--------:|---------:|")
    for name, times in rows.items():
        if not times:
            hint = "skipped (--no-torch)" if args.no_torch else f"not installed: {TORCH_HINT}"
            print(f"| {name:26} | {hint} |")
            continue
        t = median[name]
        vs_torch = f"{torch_t / t:8.2f}" if torch_t else "     nan"
        print(
            f"| {name:26} | {1 / t:7.1f} | {t * 1e3:5.2f} ({min(times) * 1e3:5.2f}-{max(times) * 1e3:5.2f}) "
            f"| {flax_t / t:7.2f} | {vs_torch} |"
        )
    ours = median["ours vanilla fast"]
    if same in median:
        print(f"ours vs flax on the same {args.devices} devices: {median[same] / ours:.2f}")
    vs_torch = f"{torch_t / ours:.2f}" if torch_t else "nan"
    print(f"vs_flax={flax_t / ours:.2f} vs_torch={vs_torch}")


if __name__ == "__main__":
    main(ARGS)
