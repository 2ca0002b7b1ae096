"""The in-batch softmax against a numpy reference, with logQ and accidental hits."""

import numpy as np
import tensorflow as tf

from recsys.model.training.losses import in_batch_softmax_loss


def reference(u, v, ids, log_q, positive, t):
    u, v, ids, log_q = u[positive], v[positive], ids[positive], log_q[positive]
    losses = []
    for i in range(len(u)):
        logits = u[i] @ v.T / t - log_q
        keep = (ids != ids[i]) | (np.arange(len(ids)) == i)  # drop accidental hits
        logits = logits[keep]
        target = int(np.flatnonzero(np.flatnonzero(keep) == i)[0])
        losses.append(-(logits[target] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()))
    return np.mean(losses)


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 12, 4)).astype(np.float32)
    ids = np.array([1, 2, 3, 1, 4, 5, 2, 6, 7, 8, 1, 9])  # items 1 and 2 repeat: accidental hits
    log_q = np.log(rng.uniform(0.01, 0.2, size=12)).astype(np.float32)
    positive = rng.uniform(size=12) < 0.7
    got = in_batch_softmax_loss(tf.constant(u), tf.constant(v), tf.constant(ids), tf.constant(log_q),
                                tf.constant(positive), 0.5).numpy()
    assert np.isclose(got, reference(u, v, ids, log_q, positive, 0.5), atol=1e-4)


def test_accidental_hits_do_not_count_as_negatives():
    u = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    v = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)  # the same item twice
    zeros = tf.zeros(2)
    same = in_batch_softmax_loss(u, v, tf.constant([7, 7]), zeros, tf.constant([True, True]), 1.0).numpy()
    diff = in_batch_softmax_loss(u, v, tf.constant([7, 8]), zeros, tf.constant([True, True]), 1.0).numpy()
    assert np.isclose(same, 0.0, atol=1e-6) and np.isclose(diff, np.log(2), atol=1e-6)


def test_no_positive_rows_gives_zero_not_nan():
    u = tf.ones((3, 2))
    loss = in_batch_softmax_loss(u, u, tf.constant([1, 2, 3]), tf.zeros(3), tf.constant([False] * 3), 0.1)
    assert float(loss) == 0.0
