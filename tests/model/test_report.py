"""The report's target checks, on made-up evaluations."""

from model.report import table, targets


def results(bayes_ctcvr):
    ev = {"cvr_auc": 0.80, "ctcvr_auc": 0.78, "cvr_auc_all": 0.79, "true_ndcg@50_by_ctcvr": 0.5,
          "true_ndcg@50_by_ctr": 0.4,
          "baselines": {"oracle": {"cvr_auc": 0.84, "ctcvr_auc": 0.85},
                        "bayes": {"cvr_auc": 0.82, "ctcvr_auc": bayes_ctcvr}}}
    return {"default": {"eval": ev}, "default, ESMM CVR loss": {"eval": {"cvr_auc_all": 0.795}}}


def test_targets_are_checked_against_the_numbers():
    text = "\n".join(targets("realistic", results(0.83)))
    assert ("| cvr_auc within 0.03 of the oracle | 0.8000 vs 0.8400 (gap 0.0400); bayes 0.8200 (gap 0.0200) "
            "| **no** |") in text
    assert "| ESMM >= masked loss on CVR AUC over all exposures | 0.7950 vs 0.7900 | yes |" in text
    assert "`bayes` itself" not in text  # 0.02 from the oracle: reachable in principle


def test_a_target_beyond_bayes_is_called_so():
    text = "\n".join(targets("realistic", results(0.80)))
    assert "`bayes` itself is 0.0500 from the oracle on ctcvr_auc" in text
    assert "distance to `bayes`, 0.0200." in text


def test_pointwise_only_columns_show_dashes():
    r = results(0.83)
    r["default"]["eval"].update({"recall@10": 0.1})
    lines = table(r).splitlines()
    assert lines[0] == "| metric | default | default, ESMM CVR loss | oracle | bayes |"
    assert "| recall@10 | 0.1000 | – | – | – |" in lines
