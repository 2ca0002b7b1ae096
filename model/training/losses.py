"""The training losses, per batch of exposures (logits a = CTR, b = CVR).

    ctr        mean BCE(click, a) over all rows
    masked     mean BCE(conversion, b) over clicked rows only (the article; selection-biased)
    esmm       BCE(conversion, sigmoid(a) * sigmoid(b)) summed over all rows (pCTCVR, Ma et al.
               2018), divided by the number of clicked rows as the masked loss is
    retrieval  in-batch sampled softmax over the clicked pairs (Yi et al., RecSys 2019)

For the retrieval loss, every other item of a batch's positive pairs is a negative.
Popular items appear in batches more often, so they are over-penalised as negatives; the
logQ correction subtracts log q(item) (its probability of being sampled) from each logit.
A negative that is the same item as the row's positive (an "accidental hit") is masked out.
keras-rs 0.4.0 has layers for both, but its RemoveAccidentalHits adds ~1e-40 to the logits
and so removes nothing (keras-team/keras-rs#206); both steps are a line each here.
"""

from __future__ import annotations

import tensorflow as tf

MASKED = -1e9


def masked_cvr_loss(ctr_logit, cvr_logit, click, conversion):
    """Mean BCE of the CVR logit over the clicked rows."""
    per_row = tf.nn.sigmoid_cross_entropy_with_logits(labels=conversion, logits=cvr_logit)
    return tf.reduce_sum(per_row * click) / tf.maximum(tf.reduce_sum(click), 1.0)


def esmm_cvr_loss(ctr_logit, cvr_logit, click, conversion):
    """BCE of pCTCVR = sigmoid(a) * sigmoid(b) against conversion, summed over all rows, per click."""
    # log pCTCVR and log(1 - pCTCVR) in log space: the product of two sigmoids underflows.
    log_p = tf.math.log_sigmoid(ctr_logit) + tf.math.log_sigmoid(cvr_logit)
    log_not_p = tf.math.log1p(-tf.exp(tf.minimum(log_p, -1e-7)))
    per_row = -(conversion * log_p + (1.0 - conversion) * log_not_p)
    # Per click, like the masked loss: a mean over all rows would weight conversions
    # 1/CTR (~13x here) less than the masked loss does, and early stopping then keeps
    # an undertrained CVR head.
    return tf.reduce_sum(per_row) / tf.maximum(tf.reduce_sum(click), 1.0)


# One entry per name in config.CVR_LOSSES (the TensorFlow-free list the command line offers).
CVR_LOSS = {"masked": masked_cvr_loss, "esmm": esmm_cvr_loss}


def losses(ctr_logit, cvr_logit, click, conversion, cvr_loss: str):
    """(ctr_loss, cvr_loss) scalars from (B,) logits and 0/1 labels; `cvr_loss` names a CVR_LOSS."""
    ctr = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=click, logits=ctr_logit))
    return ctr, CVR_LOSS[cvr_loss](ctr_logit, cvr_logit, click, conversion)


def in_batch_softmax_loss(u: tf.Tensor, v: tf.Tensor, item_ids: tf.Tensor, log_q: tf.Tensor,
                          positive: tf.Tensor, temperature: float) -> tf.Tensor:
    """Mean softmax cross-entropy over the positive rows.

    u, v      (B, D) user and item embeddings of each row
    item_ids  (B,) int item identity, for accidental hits
    log_q     (B,) log sampling probability of each row's item
    positive  (B,) bool, rows that are positive pairs (e.g. clicked exposures)
    """
    return tf.cond(tf.reduce_any(positive),
                   lambda: _softmax_loss(u, v, item_ids, log_q, positive, temperature),
                   lambda: tf.constant(0.0, u.dtype))


def _softmax_loss(u, v, item_ids, log_q, positive, temperature):
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
