"""The training toolkit: a killed run resumes from its checkpoint and ends where an uninterrupted run ends."""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxplain.nets.vae import VAE, decode, elbo_terms, encode
from jaxplain.train import create_state, fit, load_artefact, make_train_step, save_artefact, shuffled_batches
from jaxplain.train.loop import training_seconds

DATA = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
TARGET = DATA @ np.array([1.0, -2.0, 0.5, 3.0], np.float32)


class Interrupted(Exception):
    pass


def run(workdir, *, stop_after=None, epochs=3, pause=0.0):
    optimizer = optax.sgd(0.05, momentum=0.9)

    def loss_fn(params, model_state, batch, key):
        noise = 0.01 * jax.random.normal(key, batch["y"].shape)
        loss = jnp.mean((batch["x"] @ params["w"] - batch["y"] - noise) ** 2)
        return loss, (model_state, {})

    seen = []

    def batches(epoch, skip):
        order = np.random.default_rng([0, epoch]).permutation(64)
        for b in range(skip, 8):
            if stop_after is not None and len(seen) == stop_after:
                raise Interrupted
            seen.append((epoch, b))
            time.sleep(pause)
            rows = order[b * 8:(b + 1) * 8]
            yield {"x": DATA[rows], "y": TARGET[rows]}

    state = create_state({"w": jnp.zeros(4)}, {}, optimizer)
    final = fit(state, make_train_step(loss_fn, optimizer), batches, epochs=epochs, steps_per_epoch=8,
                workdir=workdir, key=jax.random.key(0), checkpoint_every=4, log_every=2)
    return final, seen


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    reference, _ = run(tmp_path / "straight")
    with pytest.raises(Interrupted):
        run(tmp_path / "killed", stop_after=11)  # dies after step 11; the last checkpoint is at step 8
    resumed, seen = run(tmp_path / "killed")
    assert seen[0] == (1, 0)  # continued with the first batch of epoch 1 (step 8), not from scratch
    assert int(resumed.step) == int(reference.step) == 24
    np.testing.assert_allclose(resumed.params["w"], reference.params["w"], rtol=1e-6)
    assert (tmp_path / "killed" / "metrics.jsonl").read_text().count("\n") > 0


def test_training_time_counts_every_process_of_a_resumed_run(tmp_path):
    with pytest.raises(Interrupted):  # a slow first process: 8 steps of 0.3 s up to its checkpoint at step 8
        run(tmp_path / "run", stop_after=11, pause=0.3)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first = next(r["seconds"] for r in logged if r["step"] == 8)  # logged as the step-8 checkpoint was saved
    started = time.perf_counter()
    run(tmp_path / "run")  # a fast second one
    second = time.perf_counter() - started
    assert second < first  # what lets the next line tell a carried total from the second process's own time
    assert first <= training_seconds(tmp_path / "run") <= first + second + 0.1


def test_shuffled_batches_cover_every_row_once_per_epoch_and_skip_as_resume_needs():
    rows = np.arange(10)
    batches = shuffled_batches({"row": rows, "double": 2 * rows}, batch_size=3, steps_per_epoch=3, seed=7)
    epoch = list(batches(0, 0))
    seen = np.concatenate([b["row"] for b in epoch])
    assert len(epoch) == 3 and len(set(seen.tolist())) == 9  # 9 distinct rows of 10; the tenth waits
    assert all(np.array_equal(b["double"], 2 * b["row"]) for b in epoch)  # the arrays stay aligned
    assert [b["row"].tolist() for b in batches(0, 1)] == [b["row"].tolist() for b in epoch[1:]]  # resume mid-epoch
    assert seen.tolist() != np.concatenate([b["row"] for b in batches(1, 0)]).tolist()  # a new order each epoch
    repeated = np.concatenate([b["row"] for b in shuffled_batches({"row": rows[:4]}, 3, 2, 0)(0, 0)])
    assert sorted(repeated[:4].tolist()) == [0, 1, 2, 3] and repeated[4:].tolist() == repeated[:2].tolist()


def test_artefacts_round_trip(tmp_path):
    variables = {"params": {"w": np.arange(6.0).reshape(2, 3)}, "batch_stats": {"m": np.ones(3)}}
    save_artefact(tmp_path / "a", variables, {"widths": [1, 2], "command": "x"})
    loaded, config = load_artefact(tmp_path / "a")
    np.testing.assert_array_equal(loaded["params"]["w"], variables["params"]["w"])
    assert config == {"widths": [1, 2], "command": "x"}


def test_vae_shapes_and_a_few_steps_reduce_the_elbo():
    vae = VAE(16, 8, (8, 8), bottleneck=4)
    key = jax.random.key(0)
    params = vae.init(key, jnp.zeros((1, 16, 16, 3)), key)
    x = jax.random.uniform(key, (8, 16, 16, 3))
    mean, logvar = encode(vae, params, x)
    assert mean.shape == logvar.shape == (8, 8) and decode(vae, params, mean).shape == (8, 16, 16, 3)
    loss = lambda p: sum(t.mean() for t in elbo_terms(vae, p, x, key, 50.0))
    optimizer = optax.adam(5e-3)
    opt_state = optimizer.init(params)
    start = float(loss(params))

    @jax.jit
    def step(params, opt_state):
        updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(50):
        params, opt_state = step(params, opt_state)
    assert float(loss(params)) < 0.7 * start
    with pytest.raises(ValueError, match="resolution must be"):
        VAE(20, 8, (8, 8)).init(key, jnp.zeros((1, 20, 20, 3)), key)
