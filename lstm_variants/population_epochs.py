"""The epoch loop of one population chunk, on the host: per-member early stopping and divergence.

After each epoch (one call of the compiled, vmapped epoch program) the host reads every member's
training and validation loss, appends them to the member's curve, and freezes a member that has
diverged (a loss that is not finite) or has not improved for ``patience`` epochs; a frozen member's
parameters and optimizer state are left alone by the program, and its best parameters are kept.
Validation and the best parameters read each member at its optimizer's evaluation point
(``optimizers.MemberOptimizer.evaluation_point``: the parameters trained, or Nesterov SGD's
theta_t recovered from the optimizer state); training goes on from the parameters trained.
The loop's state is a ``population_checkpoint.ChunkState``, saved when due, on Ctrl-C, and when
submitit requeues a pre-empted or timed-out SLURM job.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from lstm_variants.losses import metric_value
from lstm_variants.population_checkpoint import ChunkCheckpoint, ChunkState
from lstm_variants.train import TrainSettings


def train_epochs(
    state: ChunkState,
    epoch_fn,
    evaluate_valid,
    masks,
    regularization,
    data_keys,
    train,
    valid,
    settings: TrainSettings,
    count: int,
    metric: str,
    saver: ChunkCheckpoint | None,
    progress: bool,
    evaluation_point=None,
) -> None:
    """Epochs ``state.epoch + 1`` to ``max_epochs`` of one chunk, with per-member early stopping.

    ``state`` is updated in place; the first ``count`` members are real, the rest are the
    device-count padding. ``saver`` (if any) saves the state when it is due, at the end, and on
    Ctrl-C or a requeue by submitit (the last whole epoch; the interrupt then goes on up).

    Args:
      state: where the loop starts (epoch 0, or a restored checkpoint); updated in place.
      epoch_fn: the compiled population epoch, (params, opt_state, masks, regularization, keys,
        active, epoch, *train) -> (params, opt_state, train_loss per member).
      evaluate_valid: the compiled evaluation, (params, *valid) -> (loss, solved) per member.
      masks, regularization, data_keys: the members' gradient masks, input noise and dropout
        rates, and data keys (an epoch's key is ``fold_in(data key, epoch)``).
      train, valid: the splits' arrays (``train.split_arrays``).
      settings: ``max_epochs`` and ``patience``.
      count: the real members, the first ``count``.
      metric: the dataset's metric, for the progress bar.
      saver: the chunk's checkpoint, or None.
      progress: show a progress bar over epochs.
      evaluation_point: (params, opt_state) -> the parameters validated and kept as best, per
        member (None: the parameters trained, as they are).
    """
    arrays = state.arrays
    active, best_valid, best_epoch = arrays["active"], arrays["best_valid"], arrays["best_epoch"]
    started, earlier_seconds = time.perf_counter(), state.seconds
    epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    bar = tqdm(
        range(state.epoch + 1, settings.max_epochs + 1),
        initial=state.epoch,
        total=settings.max_epochs,
        desc="epochs",
        disable=None if progress else True,  # None: no bars where stderr is no terminal
        leave=False,
    )
    committed = state.copy()  # the last whole epoch, which Ctrl-C saves
    try:
        for epoch in bar:
            arrays["params"], arrays["opt_state"], train_loss = epoch_fn(
                arrays["params"],
                arrays["opt_state"],
                masks,
                regularization,
                epoch_keys(data_keys, epoch),  # the epoch's randomness: resuming repeats it exactly
                jnp.asarray(active),
                jnp.int32(epoch),
                *train,
            )
            evaluated = arrays["params"]
            if evaluation_point is not None:
                evaluated = evaluation_point(arrays["params"], arrays["opt_state"])
            valid_loss, valid_solved = evaluate_valid(evaluated, *valid)
            train_loss, valid_loss, valid_solved = (
                np.asarray(a) for a in (train_loss, valid_loss, valid_solved)
            )
            improved = np.zeros(len(active), bool)
            for i in np.flatnonzero(active):
                entry = {
                    "epoch": epoch,
                    "train_loss": float(train_loss[i]),
                    "valid_loss": float(valid_loss[i]),
                }
                if not math.isnan(valid_solved[i]):
                    entry["valid_solved"] = float(valid_solved[i])
                state.curves[i].append(entry)
                if not (math.isfinite(entry["train_loss"]) and math.isfinite(entry["valid_loss"])):
                    state.stopped[i], active[i] = "diverged", False
                elif entry["valid_loss"] < best_valid[i]:
                    best_valid[i], best_epoch[i], improved[i] = entry["valid_loss"], epoch, True
                elif epoch - best_epoch[i] >= settings.patience:
                    state.stopped[i], active[i] = "early", False
            if improved.any():
                arrays["best_params"] = _select(
                    jnp.asarray(improved), evaluated, arrays["best_params"]
                )
            state.epoch, state.seconds = epoch, earlier_seconds + time.perf_counter() - started
            committed = state.copy()  # one assignment: an interrupt sees the old or the new
            running = int(active[:count].sum())
            best = metric_value(float(np.min(best_valid[:count])), metric)
            bar.set_postfix(
                {"running": f"{running}/{count}", f"best valid {metric}": f"{best:.4g}"}
            )
            if not running:
                break
            if saver is not None and epoch < settings.max_epochs:  # the last is saved as finished
                saver.save_if_due(state)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or submitit requeueing a SLURM job
        if saver is not None:  # (pre-empted or at its time limit: sys.exit in a signal handler)
            saver.save_if_newer(committed)
        raise
    bar.close()
    state.finished = True
    if saver is not None:
        saver.save_finished(state)


@jax.jit
def _select(which, new, old):
    return jax.tree.map(
        lambda n, o: jnp.where(which.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old
    )
