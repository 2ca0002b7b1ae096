"""Sparse Adam: Adam on the rows a batch touches, nothing elsewhere."""

import numpy as np
import tensorflow as tf

from recsys.model.training.optim import SparseAdam


def adam_reference(x, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return x


def test_dense_gradients_follow_adam():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 2)).astype(np.float32)
    grads = [rng.normal(size=(3, 2)).astype(np.float32) for _ in range(5)]
    var = tf.Variable(x0)
    opt = SparseAdam([var], learning_rate=0.01)
    for g in grads:
        opt.apply([tf.constant(g)])
    assert np.allclose(var.numpy(), adam_reference(x0, grads), atol=1e-5)


def test_sparse_gradients_touch_only_their_rows_and_sum_repeats():
    table = tf.Variable(np.ones((6, 2), np.float32))
    opt = SparseAdam([table], learning_rate=0.01)
    # Rows 1 and 4; row 1 appears twice, so its gradient is the sum (0.5 + 1.5 = 2).
    grad = tf.IndexedSlices(tf.constant([[0.5, 0.5], [1.5, 1.5], [1.0, -1.0]]), tf.constant([1, 1, 4]), tf.constant([6, 2]))
    opt.apply([grad])
    x = table.numpy()
    assert np.allclose(x[[0, 2, 3, 5]], 1.0)  # untouched rows (and their moments) stay as they were
    expected1 = adam_reference(np.ones(2, np.float32), [np.array([2.0, 2.0], np.float32)])
    expected4 = adam_reference(np.ones(2, np.float32), [np.array([1.0, -1.0], np.float32)])
    assert np.allclose(x[1], expected1, atol=1e-6) and np.allclose(x[4], expected4, atol=1e-6)
    assert np.allclose(opt.m[0].numpy()[[0, 2, 3, 5]], 0.0)


def test_embedding_gradient_in_a_real_step_is_sparse():
    from recsys.model.training.towers import Embedding  # the towers' tables

    emb = Embedding(1000, 4)
    emb.build((None,))
    before = emb.embeddings.numpy().copy()
    opt = SparseAdam(emb.trainable_variables, learning_rate=0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(emb(tf.constant([3, 7])))
    grads = tape.gradient(loss, emb.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    opt.apply(grads)
    changed = np.flatnonzero(np.any(emb.embeddings.numpy() != before, axis=1))
    assert changed.tolist() == [3, 7]
    # After the scatter, a lookup sees the updated rows.
    assert np.array_equal(emb(tf.constant([7, 3, 0])).numpy(), emb.embeddings.numpy()[[7, 3, 0]])


def test_sparse_rows_can_use_adagrad_while_dense_weights_keep_adam():
    rng = np.random.default_rng(1)
    table = tf.Variable(np.ones((5, 2), np.float32))
    dense0 = rng.normal(size=(2,)).astype(np.float32)
    dense = tf.Variable(dense0)
    opt = SparseAdam([table, dense], learning_rate=0.01, adagrad_lr=0.2, tables=[True, False], adagrad_initial=0.1)
    steps = [(np.array([[1.0, -2.0], [0.5, 0.5]], np.float32), [2, 2]),  # row 2 twice: summed
             (np.array([[3.0, 1.0]], np.float32), [2])]
    dense_grads = [rng.normal(size=(2,)).astype(np.float32) for _ in steps]
    for (values, rows), g in zip(steps, dense_grads):
        opt.apply([tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([5, 2])), tf.constant(g)])
    acc, x = np.full(2, 0.1, np.float32), np.ones(2, np.float32)
    for g in (np.array([1.5, -1.5], np.float32), np.array([3.0, 1.0], np.float32)):
        acc = acc + g * g
        x = x - 0.2 * g / np.sqrt(acc)
    out = table.numpy()
    assert np.allclose(out[2], x, atol=1e-6) and np.allclose(out[[0, 1, 3, 4]], 1.0)
    assert np.allclose(dense.numpy(), adam_reference(dense0, dense_grads), atol=1e-5)
    assert opt.m[0] is None and opt.acc[1] is None  # a table keeps one accumulator, not two moments
