"""Training toolkit: train states, jitted data-parallel steps, orbax checkpoints, resumable loops."""

from jaxplain.train.checkpoints import load_artefact, project_checkpoints, save_artefact
from jaxplain.train.loop import TrainState, create_state, fit, make_train_step, shuffled_batches

__all__ = ["TrainState", "create_state", "fit", "load_artefact", "make_train_step", "project_checkpoints", "save_artefact",
           "shuffled_batches"]
