"""The report's target checks, on made-up evaluations."""

from recsys.model.evaluation.report import kept_sections, learnability_section, table, targets


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


def learned(revealed_cvr):
    return {"revealed": {"ctr_auc": 0.75, "cvr_auc": revealed_cvr, "ctcvr_auc": 0.83},
            "equations": {"ctr_auc": 0.77, "cvr_auc": 0.82, "ctcvr_auc": 0.845},
            "oracle": {"ctr_auc": 0.77, "cvr_auc": 0.84, "ctcvr_auc": 0.855}}


def test_the_learnability_table_sits_beside_the_default_and_names_targets_out_of_reach():
    r = results(0.83)
    r["default"]["eval"]["ctr_auc"] = 0.67
    lines = learnability_section(r, learned(0.80))
    assert "| cvr_auc | 0.8000 | 0.8000 | 0.8200 | 0.8400 |" in lines
    assert "| ctr_auc | 0.6700 | 0.7500 | 0.7700 | 0.7700 |" in lines
    text = "\n".join(lines)
    assert "the model's cvr_auc is still 0.0400 from the oracle (the equations on the same inputs: 0.0200)" in text
    assert "ctcvr_auc is still" not in text  # 0.025 from the oracle: within the target
    assert "cvr_auc is still" not in "\n".join(learnability_section(r, learned(0.815)))
    blind = learned(0.80)
    blind["equations"]["cvr_auc"] = 0.80
    assert "0.0400): the inputs themselves leave the 0.03 target out of reach." in "\n".join(
        learnability_section(r, blind))


def test_sections_other_runs_wrote_are_kept_whole_and_nothing_else():
    old = ("# Model quality\n\nold table\n\n<!-- cold-start:start -->\n## Cold-start items\n| a |\n"
           "<!-- cold-start:end -->\ntrailing\n<!-- half:start -->\nno end\n")
    assert kept_sections(old) == ["<!-- cold-start:start -->\n## Cold-start items\n| a |\n<!-- cold-start:end -->"]
    assert kept_sections("# Model quality\n") == []
