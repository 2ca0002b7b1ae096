"""Adam with sparse ("lazy") updates for embedding tables.

Keras 3 optimizers turn an embedding gradient into a dense update of the whole table
(keras-team/keras#19992), so a step costs O(vocabulary). Here an IndexedSlices gradient
updates only the rows the batch touched, together with their Adam moments (the LazyAdam
of TensorFlow Addons); dense variables get the ordinary Adam update.
"""

from __future__ import annotations

import tensorflow as tf


class SparseAdam:
    def __init__(self, variables, learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7):
        # A keras.Variable wraps a tf.Variable in `.value`; scatter updates need the latter.
        self.variables = [v if isinstance(v, tf.Variable) else v.value for v in variables]
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta_1, beta_2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads) -> None:
        """One update; `grads` in the order of the variables given at construction."""
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float32)
        lr = self.lr * tf.sqrt(1.0 - self.b2 ** t) / (1.0 - self.b1 ** t)
        for g, var, m, v in zip(grads, self.variables, self.m, self.v):
            if g is None:
                continue
            if isinstance(g, tf.IndexedSlices):
                rows, segment = tf.unique(g.indices)
                values = tf.math.unsorted_segment_sum(g.values, segment, tf.shape(rows)[0])  # repeated rows add up
                m_rows = self.b1 * tf.gather(m, rows) + (1.0 - self.b1) * values
                v_rows = self.b2 * tf.gather(v, rows) + (1.0 - self.b2) * tf.square(values)
                m.scatter_update(tf.IndexedSlices(m_rows, rows))
                v.scatter_update(tf.IndexedSlices(v_rows, rows))
                var.scatter_sub(tf.IndexedSlices(lr * m_rows / (tf.sqrt(v_rows) + self.eps), rows))
            else:
                m.assign(self.b1 * m + (1.0 - self.b1) * g)
                v.assign(self.b2 * v + (1.0 - self.b2) * tf.square(g))
                var.assign_sub(lr * m / (tf.sqrt(v) + self.eps))
