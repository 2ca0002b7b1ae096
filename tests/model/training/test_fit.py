"""Early stopping keeps the best epoch's weights and metrics, and the history every epoch trained."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.artifacts.version import read_manifest
from recsys.model.training import fit as fit_module
from recsys.model.training.config import make_config
from recsys.model.training.train import train

# Held-back log loss per epoch: best at epoch 2, then two epochs without improvement (patience 2).
LOSSES = [1.0, 0.5, 0.6, 0.7, 0.4, 0.3]


@pytest.fixture
def scripted_losses(monkeypatch):
    """validation_loss follows LOSSES; `snapshots` holds the weights each epoch ended with."""
    snapshots, models = [], []
    real_predict = fit_module.make_predict

    def make_predict(model, users, items):
        models.append(model)
        return real_predict(model, users, items)

    def validation_loss(pred):
        snapshots.append([w.numpy().copy() for w in models[0].weights])
        return LOSSES[len(snapshots) - 1]

    monkeypatch.setattr(fit_module, "make_predict", make_predict)
    monkeypatch.setattr(fit_module, "validation_loss", validation_loss)
    return snapshots, models


def test_history_keeps_the_epochs_after_the_best(scripted_losses, seed_data, tmp_path):
    snapshots, models = scripted_losses
    config = make_config("default", epochs=6, batch_size=256, validation_fraction=0.2, patience=2)
    version, metrics = train(seed_data, tmp_path, config)
    manifest = read_manifest(version)
    history = manifest["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and manifest["best_epoch"] == 2  # stopped at 4
    assert [h["early_stopping_loss"] for h in history] == LOSSES[:4]
    # The version holds epoch 2: its weights, its held-out AUCs.
    for w, kept in zip(models[0].weights, snapshots[1]):
        assert np.array_equal(w.numpy(), kept)
    assert not all(np.array_equal(a, b) for a, b in zip(snapshots[1], snapshots[3]))
    assert metrics == manifest["metrics"] == {k: history[1][f"test_{k}"] for k in ("ctr_auc", "cvr_auc", "ctcvr_auc")}
    assert manifest["training"]["fit_seconds"] == pytest.approx(sum(h["seconds"] for h in history), abs=1e-2)


def test_without_held_back_rows_the_last_epoch_is_kept(seed_data, tmp_path):
    version, metrics = train(seed_data, tmp_path, make_config("article", epochs=2, batch_size=256))
    manifest = read_manifest(version)
    assert len(manifest["history"]) == 2 and manifest["best_epoch"] == 2
    assert metrics["ctr_auc"] == manifest["history"][-1]["test_ctr_auc"]
