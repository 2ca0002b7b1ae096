"""The click and conversion losses against numpy references."""

import numpy as np
import pytest
import tensorflow as tf

from recsys.model.training.losses import losses


def bce(y, p):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def sig(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    click = (rng.random(50) < 0.3).astype(np.float32)
    conversion = click * (rng.random(50) < 0.5)
    return a, b, click, conversion


def run(a, b, click, conversion, kind):
    ctr, cvr = losses(tf.constant(a, tf.float32), tf.constant(b, tf.float32), tf.constant(click, tf.float32),
                      tf.constant(conversion, tf.float32), kind)
    return float(ctr), float(cvr)


def test_masked_loss_is_the_mean_over_clicked_rows(batch):
    a, b, click, conversion = batch
    ctr, cvr = run(a, b, click, conversion, "masked")
    assert ctr == pytest.approx(bce(click, sig(a)).mean(), rel=1e-5)
    clicked = click == 1
    assert cvr == pytest.approx(bce(conversion[clicked], sig(b[clicked])).mean(), rel=1e-5)


def test_esmm_loss_is_pctcvr_log_loss_over_all_rows_per_click(batch):
    a, b, click, conversion = batch
    _, cvr = run(a, b, click, conversion, "esmm")
    expected = bce(conversion, sig(a) * sig(b)).sum() / click.sum()
    assert cvr == pytest.approx(expected, rel=1e-5)


def test_esmm_loss_stays_finite_where_the_product_underflows():
    a = np.array([-60.0, 40.0, -5.0])
    b = np.array([-60.0, 40.0, 3.0])
    click = np.array([0.0, 1.0, 1.0], np.float32)
    conversion = np.array([0.0, 1.0, 0.0], np.float32)
    _, cvr = run(a, b, click, conversion, "esmm")
    assert np.isfinite(cvr) and cvr >= 0


def test_every_cvr_loss_the_command_line_offers_has_an_implementation():
    from recsys.cli import parser
    from recsys.model.training.config import CVR_LOSSES
    from recsys.model.training.losses import CVR_LOSS

    assert set(CVR_LOSS) == set(CVR_LOSSES)
    train = parser()._subparsers._group_actions[0].choices["train"]
    assert next(a for a in train._actions if a.dest == "cvr_loss").choices == CVR_LOSSES
