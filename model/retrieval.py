"""In-batch sampled softmax for retrieval (Yi et al., RecSys 2019).

For a batch of positive (user, item) pairs, every other item in the batch is a negative.
Popular items appear in batches more often, so they are over-penalised as negatives; the
logQ correction subtracts log q(item) (its probability of being sampled) from each logit.
A negative that is the same item as the row's positive (an "accidental hit") is masked out.

keras-rs 0.4.0 has layers for both, but its RemoveAccidentalHits adds ~1e-40 to the logits
and so removes nothing (keras-team/keras-rs#206); both steps are a line each here.
"""

from __future__ import annotations

import tensorflow as tf

MASKED = -1e9


def in_batch_softmax_loss(u: tf.Tensor, v: tf.Tensor, item_ids: tf.Tensor, log_q: tf.Tensor,
                          positive: tf.Tensor, temperature: float) -> tf.Tensor:
    """Mean softmax cross-entropy over the positive rows.

    u, v      (B, D) user and item embeddings of each row
    item_ids  (B,) int item identity, for accidental hits
    log_q     (B,) log sampling probability of each row's item
    positive  (B,) bool, rows that are positive pairs (e.g. clicked exposures)
    """
    return tf.cond(tf.reduce_any(positive),
                   lambda: _loss(u, v, item_ids, log_q, positive, temperature),
                   lambda: tf.constant(0.0, u.dtype))


def _loss(u, v, item_ids, log_q, positive, temperature):
    u = tf.boolean_mask(u, positive)
    v = tf.boolean_mask(v, positive)
    ids = tf.boolean_mask(item_ids, positive)
    log_q = tf.boolean_mask(log_q, positive)
    logits = tf.matmul(u, v, transpose_b=True) / temperature - log_q[None, :]      # (P, P)
    same_item = tf.equal(ids[:, None], ids[None, :])
    accidental = tf.logical_and(same_item, tf.logical_not(tf.eye(tf.shape(ids)[0], dtype=tf.bool)))
    logits += tf.cast(accidental, logits.dtype) * MASKED
    labels = tf.eye(tf.shape(ids)[0], dtype=logits.dtype)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
