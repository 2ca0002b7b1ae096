"""The report's target checks, on made-up evaluations."""

import pytest

from recsys.model.data.simulate import simulate
from recsys.model.evaluation.report import (KS, bayes_distance, cold_line, history_table, kept_sections,
                                            learnability_section, plots, split_for, table, targets, training_figure,
                                            true_ndcg_figure)


def results(bayes_ctcvr):
    ev = {"cvr_auc": 0.80, "ctcvr_auc": 0.78, "cvr_auc_all": 0.79, "true_ndcg@50_by_ctcvr": 0.5,
          "true_ndcg@50_by_ctr": 0.4,
          "baselines": {"oracle": {"cvr_auc": 0.84, "ctcvr_auc": 0.85},
                        "bayes": {"cvr_auc": 0.82, "ctcvr_auc": bayes_ctcvr}}}
    return {"default": {"eval": ev}, "default, ESMM CVR loss": {"eval": {"cvr_auc_all": 0.795}}}


def test_targets_are_checked_against_the_numbers():
    text = "\n".join(targets("realistic", results(0.83)))
    assert "| ranking by ctcvr beats ranking by ctr on true-pCTCVR NDCG@50 | 0.5000 vs 0.4000 | yes |" in text
    assert "| ESMM >= masked loss on CVR AUC over all exposures | 0.7950 vs 0.7900 | yes |" in text
    assert "oracle" not in text  # how far from the best is the distance to bayes, not a target


def test_the_distance_to_bayes_is_model_minus_bayes_for_every_configuration_with_the_auc():
    r = results(0.83)
    r["default, history 10"] = {"eval": {"cvr_auc": 0.83, "ctcvr_auc": 0.79}}
    lines = bayes_distance(r)
    assert lines[0] == "| metric | bayes | default − bayes | default, history 10 − bayes |"
    assert "| cvr_auc | 0.8200 | -0.0200 | +0.0100 |" in lines
    assert "| ctcvr_auc | 0.8300 | -0.0500 | -0.0400 |" in lines
    del r["default"]["eval"]["baselines"]["bayes"]
    assert bayes_distance(r) == []  # MovieLens: no truth, no bayes


def test_cold_user_rows_follow_the_metrics_and_the_history_model_has_its_own_table():
    r = results(0.83)
    cold = {"max_training_clicks": 2, "users_ranked": 37, "model": {"recall@10": 0.05, "recall@50": 0.2},
            "item_knn": {"recall@10": 0.03, "recall@50": 0.1}}
    r["default"]["eval"].update({"recall@10": 0.1, "cold_users": cold})
    r["default"]["eval"]["baselines"]["item_knn"] = {"recall@10": 0.08}
    r["default, history 10"] = {"eval": {"recall@10": 0.12, "cvr_auc": 0.81,
                                         "cold_users": {**cold, "model": {"recall@10": 0.07}}}}
    lines = table(r).splitlines()
    assert lines[0] == "| metric | default | default, ESMM CVR loss | oracle | bayes | item_knn |"
    assert "| recall@10 | 0.1000 | – | – | – | 0.0800 |" in lines
    assert "| cold users: recall@50 | 0.2000 | – | – | – | 0.1000 |" in lines
    assert "Cold users: the 37 of the ranked users with at most 2 training clicks" in cold_line(r)
    history = history_table(r)
    assert history[0] == "| metric | default | default, history 10 |"
    assert "| cvr_auc | 0.8000 | 0.8100 |" in history and "| cold users: recall@10 | 0.0500 | 0.0700 |" in history
    del r["default, history 10"]
    assert history_table(r) == []


def test_data_with_timestamps_is_split_by_time(tmp_path):
    simulate("seed", tmp_path / "seed")
    simulate("realistic", tmp_path / "realistic", users=50, items=40, interactions=500, progress=False)
    assert split_for(tmp_path / "seed") == "random" and split_for(tmp_path / "realistic") == "time"


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
    assert "0.0400): the inputs themselves keep it more than 0.03 away." in "\n".join(
        learnability_section(r, blind))


def history(losses):
    return [{"epoch": e, "ctr_loss": 0.5 - 0.01 * e, "cvr_loss": 0.3, "test_ctr_auc": 0.6 + 0.01 * e,
             "test_cvr_auc": 0.7, **({"early_stopping_loss": x} if x is not None else {})}
            for e, x in enumerate(losses, 1)]


def plotted():
    """Two configurations, one early-stopped at epoch 2 of 4, and baselines, as the report holds them."""
    def ev(scale):
        out = {f"recall@{k}": scale * k / 100 for k in KS}
        for k in KS:
            out.update({f"true_ndcg@{k}_by_ctcvr": scale, f"true_ndcg@{k}_by_ctr": scale * 0.8})
        return out

    default = ev(0.5) | {"baselines": {"popularity": ev(0.25), "random": ev(0.05), "oracle": ev(0.95),
                                       "bayes": {"ctr_auc": 0.72}}}
    return {"article": {"eval": ev(0.15), "history": history([None] * 3), "best_epoch": None},
            "default": {"eval": default, "history": history([1.0, 0.5, 0.6, 0.7]), "best_epoch": 2}}


def test_training_curves_show_every_epoch_and_mark_the_kept_one(tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need the `report` extra")
    fig = training_figure("realistic", plotted())
    loss, auc, stopping = fig.axes
    assert list(loss.lines[1].get_xdata())[-1] == 4  # the epochs after the best one are drawn
    for ax in (loss, auc, stopping):
        marks = [ln for ln in ax.lines if ln.get_linestyle() == ":" and len(ln.get_xdata()) == 2]
        assert [list(m.get_xdata()) for m in marks] == [[2, 2]]  # one vertical line, at epoch 2 (article: none)
    assert [t.get_text() for t in stopping.get_legend().get_texts()] == ["default"]


def test_true_ndcg_has_a_line_per_ranking_column_and_every_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need the `report` extra")
    results = plotted()
    fig = true_ndcg_figure("realistic", results)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["article", "default", "default, ranked by CTR alone", "popularity", "random", "oracle"]
    assert list(fig.axes[0].lines[0].get_xdata()) == list(KS)
    files = plots("realistic", results, tmp_path)
    assert files == ["realistic-training.png", "realistic-true-ndcg.png", "realistic-recall.png"]
    assert all((tmp_path / f).read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for f in files)
    for r in results.values():  # MovieLens: no truth, no true-NDCG plot
        r["eval"] = {k: v for k, v in r["eval"].items() if not k.startswith("true_ndcg")}
        for b in r["eval"].get("baselines", {}).values():
            for k in [k for k in b if k.startswith("true_ndcg")]:
                del b[k]
    assert true_ndcg_figure("movielens", results) is None


def test_sections_other_runs_wrote_are_kept_whole_and_nothing_else():
    old = ("# Model quality\n\nold table\n\n<!-- cold-start:start -->\n## Cold-start items\n| a |\n"
           "<!-- cold-start:end -->\ntrailing\n<!-- half:start -->\nno end\n")
    assert kept_sections(old) == ["<!-- cold-start:start -->\n## Cold-start items\n| a |\n<!-- cold-start:end -->"]
    assert kept_sections("# Model quality\n") == []


def test_history_targets_compare_the_history_model_with_the_default_and_item_knn():
    from recsys.model.evaluation.report import HISTORY, history_targets

    default = {"recall@10": 0.05, "recall@50": 0.2, "recall@10_by_ctr": 0.06, "recall@50_by_ctr": 0.2,
               "baselines": {"item_knn": {"recall@10": 0.04, "recall@50": 0.3}}}
    history = {"recall@10": 0.066, "recall@50": 0.25, "recall@10_by_ctr": 0.07, "recall@50_by_ctr": 0.31}
    results = {"default": {"eval": default}, HISTORY: {"eval": history}}
    rows = {t: ok for t, _, ok in history_targets("movielens", results)}
    both, by_ctr = "history 10, ranked by pCTR x pCVR", "history 10, ranked by pCTR"
    assert rows == {f"{both}: HR@10 >= 1.3x default": True, f"{both}: HR@10 above item_knn": True,
                    f"{both}: HR@50 >= 1.3x default": False, f"{both}: HR@50 above item_knn": False,
                    f"{by_ctr}: HR@10 >= 1.3x default": False, f"{by_ctr}: HR@10 above item_knn": True,
                    f"{by_ctr}: HR@50 >= 1.3x default": True, f"{by_ctr}: HR@50 above item_knn": True}
    assert history_targets("movielens", {"default": {"eval": default}}) == []  # no history model: no rows


def test_history_targets_read_the_means_over_seeds_and_the_seed_table_shows_each_run():
    from recsys.model.evaluation.report import HISTORY, TARGET_SEEDS, history_targets, seeds_table

    def ev(r10, r50):
        return {"recall@10": r10, "recall@50": r50, "recall@10_by_ctr": r10, "recall@50_by_ctr": r50}

    # Seed 42 alone would meet HR@10 >= 1.3x (0.066 vs 0.05); the mean over the seeds does not.
    default = [ev(0.05, 0.2), ev(0.06, 0.2), ev(0.06, 0.2), ev(0.07, 0.2)]
    history = [ev(0.066, 0.27), ev(0.06, 0.26), ev(0.07, 0.26), ev(0.07, 0.25)]
    assert len(default) == len(TARGET_SEEDS)
    results = {"default": {"eval": {**default[0], "baselines": {"item_knn": {"recall@10": 0.065, "recall@50": 0.3}}},
                           "seed_evals": default},
               HISTORY: {"eval": history[0], "seed_evals": history}}
    results["default"]["seed_evals"][0] = results["default"]["eval"]
    rows = {t: (m, ok) for t, m, ok in history_targets("movielens", results)}
    m, ok = rows["history 10, ranked by pCTR x pCVR: HR@10 >= 1.3x default"]
    assert m == "0.0665 vs 0.0600 (1.11x) (means of 4 seeds)" and not ok
    m, ok = rows["history 10, ranked by pCTR x pCVR: HR@50 >= 1.3x default"]
    assert m == "0.2600 vs 0.2000 (1.30x) (means of 4 seeds)" and ok
    assert rows["history 10, ranked by pCTR x pCVR: HR@10 above item_knn"][1]  # 0.0665 > 0.065
    table = seeds_table("movielens", results)
    assert table[0] == "| metric | seed | default | history 10 | ratio |"
    assert f"| recall@10 | {TARGET_SEEDS[0]} | 0.0500 | 0.0660 | 1.32x |" in table
    assert "| recall@10 | mean | 0.0600 | 0.0665 | 1.11x |" in table
    assert len(table) == 2 + 4 * (len(TARGET_SEEDS) + 1)  # four metrics, a row per seed and the mean
    del results[HISTORY]["seed_evals"]
    assert seeds_table("movielens", results) == []  # without every configuration's seed runs: no table
    # Nor are means compared with one run: both sides fall back to seed 42's.
    m, _ = {t: (m, ok) for t, m, ok in history_targets("movielens", results)}[
        "history 10, ranked by pCTR x pCVR: HR@10 >= 1.3x default"]
    assert m == "0.0660 vs 0.0500 (1.32x)"
