"""Structured pruning of a tiny random BERT: real scores, real annealing, real removal and reload."""
import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

from hf_qselect.qubo import AnnealSettings
from hf_qselect.pruning import AnnealingPruner, load_pruned
from hf_qselect.pruning.units import select_units

H, D, HIDDEN, FFN, LAYERS = 4, 8, 32, 64, 4


def tiny(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=200, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=H,
                        intermediate_size=FFN, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


@pytest.fixture
def calibration():
    rng = np.random.default_rng(0)
    return Dataset.from_dict({"input_ids": [rng.integers(1, 200, rng.integers(6, 14)).tolist() for _ in range(48)],
                              "labels": rng.integers(0, 2, 48).tolist()})


def layer_params(heads, width):
    """Parameters of one BERT layer with ``heads`` heads and FFN ``width``, from the architecture's formula."""
    attn = 3 * (HIDDEN * heads * D + heads * D) + heads * D * HIDDEN + HIDDEN + 2 * HIDDEN
    return attn + HIDDEN * width + width + width * HIDDEN + HIDDEN + 2 * HIDDEN


def test_budgets_are_met_and_params_drop_as_expected(calibration):
    model = tiny()
    before = sum(p.numel() for p in model.parameters())
    outside = before - LAYERS * layer_params(H, FFN)
    pruner = AnnealingPruner(remove_heads=0.4, remove_ffn=0.3, remove_layers=0.25, seed=0, show_progress=False).fit(model, calibration)
    pruner.apply(model)
    r = pruner.report_
    assert len(r.layers_kept) == 3 and model.config.num_hidden_layers == 3 and len(model.bert.encoder.layer) == 3
    assert r.heads_after == 12 - round(0.4 * 12)  # the head budget counts the heads of kept layers
    assert r.ffn_width_after == FFN - round(0.3 * FFN) == model.config.intermediate_size
    assert all(len(h) >= 1 for h in pruner.kept_heads_.values())
    expected = outside + sum(layer_params(len(pruner.kept_heads_[l]), r.ffn_width_after) for l in r.layers_kept)
    assert sum(p.numel() for p in model.parameters()) == expected == r.params_after
    with torch.no_grad():
        logits = model(torch.randint(1, 200, (3, 10))).logits
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()


def test_save_and_reload_give_identical_logits(calibration, tmp_path):
    model = tiny()
    AnnealingPruner(remove_heads=0.5, remove_ffn=0.25, seed=1, show_progress=False).fit_apply(model, calibration)
    x = torch.randint(1, 200, (2, 11))
    with torch.no_grad():
        expected = model(x).logits
    model.save_pretrained(tmp_path / "pruned")
    with torch.no_grad():
        assert torch.equal(load_pruned(tmp_path / "pruned")(x).logits, expected)


def test_ffn_and_layer_pruning_round_trip_through_plain_from_pretrained(calibration, tmp_path):
    model = tiny()
    AnnealingPruner(remove_ffn=0.5, remove_layers=0.5, seed=0, show_progress=False).fit_apply(model, calibration)
    model.save_pretrained(tmp_path / "p")
    x = torch.randint(1, 200, (2, 7))
    with torch.no_grad():
        assert torch.equal(BertForSequenceClassification.from_pretrained(tmp_path / "p").eval()(x).logits, model(x).logits)


def random_units(n: int, dim: int, seed: int, block_size: int) -> tuple[np.ndarray, np.ndarray, AnnealSettings]:
    """Importance, unit-norm signal vectors and SA settings for ``n`` random units."""
    rng = np.random.default_rng(seed)
    importance = rng.random(n) + 0.05
    vectors = rng.normal(size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return importance, vectors, AnnealSettings(solver="sa", seed=0, block_size=block_size, n_jobs=1)


def test_unit_qubo_energy_matches_independent_recomputation():
    importance, vectors, settings = random_units(30, 12, seed=4, block_size=100)
    choice = select_units(importance, vectors, 10, settings, beta=0.5)
    kept = choice.kept
    scale = importance.mean()
    expected = -importance[kept].sum() / scale
    for a in range(len(kept)):
        for b in range(a + 1, len(kept)):
            expected += (2 * 0.5 / 9) * max(float(vectors[kept[a]] @ vectors[kept[b]]), 0.0)
    assert len(kept) == 10 and np.isclose(choice.energy, expected)
    greedy = select_units(importance, vectors, 10, AnnealSettings(), beta=0.5, method="greedy")
    assert set(greedy.kept) == set(np.argsort(-importance)[:10])


def test_block_quotas_follow_the_importance_ranking():
    importance, vectors, settings = random_units(250, 16, seed=5, block_size=40)
    plain = select_units(importance, vectors, 60, settings, beta=0.0)
    assert plain.blocks > 1
    assert np.array_equal(plain.kept, np.sort(np.argsort(-importance)[:60]))
    redundant = select_units(importance, vectors, 60, settings, beta=2.0)
    assert len(redundant.kept) == 60


def test_no_layer_is_left_without_heads(calibration):
    model = tiny()
    pruner = AnnealingPruner(remove_heads=0.7, seed=0, show_progress=False).fit(model, calibration)
    assert pruner.report_.heads_after == 16 - round(0.7 * 16)
    assert all(len(pruner.kept_heads_[l]) >= 1 for l in range(LAYERS))
    offsets = np.array([0, 4, 8, 12, 16])
    units = np.arange(16)
    kept, repairs = AnnealingPruner._fill_empty_layers(np.array([0, 1, 4, 5, 12]), units, np.linspace(1, 2, 16), offsets, [0, 1, 2, 3])
    assert repairs == 1 and len(kept) == 5 and any(8 <= u < 12 for u in kept)


def test_bad_input_leaves_the_model_untouched(calibration):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50))
    with pytest.raises(TypeError, match="BERT family"):
        AnnealingPruner(remove_heads=0.5).fit(gpt, calibration)
    model = tiny()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for kwargs, match in [({"remove_heads": 1.0}, "remove_heads"), ({"remove_ffn": -0.1}, "remove_ffn"), ({"remove_layers": 0.9}, "remove all"),
                          ({"remove_heads": 0.95}, "every kept layer"), ({"remove_heads": "half"}, "remove_heads")]:
        with pytest.raises(ValueError, match=match):
            AnnealingPruner(show_progress=False, **kwargs).fit(model, calibration)
    with pytest.raises(KeyError, match="labels"):
        AnnealingPruner(remove_heads=0.5, show_progress=False).fit(model, calibration.remove_columns("labels"))
    with pytest.raises(RuntimeError, match="not fitted"):
        AnnealingPruner(remove_heads=0.5).apply(model)
    pruner = AnnealingPruner(remove_heads=0.5, remove_ffn=0.5, show_progress=False).fit(model, calibration)
    other = BertForSequenceClassification(BertConfig(vocab_size=200, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=H, intermediate_size=FFN))
    with pytest.raises(ValueError, match="differs"):
        pruner.apply(other)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert len(model.bert.encoder.layer) == LAYERS and model.bert.encoder.layer[0].intermediate.dense.out_features == FFN


def test_qubo_is_at_least_as_good_as_greedy_on_its_own_objective(calibration):
    model = tiny()
    qubo = AnnealingPruner(remove_ffn=0.5, seed=0, show_progress=False, num_reads=8).fit(model, calibration)
    greedy = AnnealingPruner(remove_ffn=0.5, method="greedy", show_progress=False).fit(model, calibration)
    scores = qubo.scores_
    for layer in range(LAYERS):
        imp, vec = scores.neuron_importance[layer], scores.neuron_vectors[layer]

        def energy(kept):
            k = len(kept)
            red = np.maximum(vec[kept] @ vec[kept].T, 0)
            return -imp[kept].sum() / imp.mean() + (2 * 0.5 / (k - 1)) * np.triu(red, 1).sum()

        assert energy(np.array(qubo.kept_neurons_[layer])) <= energy(np.array(greedy.kept_neurons_[layer])) + 1e-9


def test_cli_prune_a_saved_model(sentences, tmp_path):
    from transformers import AutoTokenizer

    from hf_qselect.cli import main
    from hf_qselect.selection.embeddings import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=H,
                        intermediate_size=FFN, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    csv = tmp_path / "cal.csv"
    sentences.to_csv(str(csv))
    out = tmp_path / "pruned"
    assert main(["prune", str(tmp_path / "model"), "--data", str(csv), "--remove-heads", "0.5", "--remove-ffn", "0.25", "--out", str(out)]) == 0
    model = load_pruned(out)
    assert model.config.intermediate_size == 48 and sum(l.attention.self.query.out_features for l in model.bert.encoder.layer) == 8 * D
    assert (out / "pruning.png").exists() and (out / "pruning_report.json").exists()
    assert main(["prune", str(tmp_path / "model"), "--data", str(csv), "--remove-heads", "1.2", "--out", str(tmp_path / "x")]) == 2


def test_ffn_width_rounds_down_to_the_multiple(calibration):
    from hf_qselect.pruning.pruner import ffn_keep_width

    assert ffn_keep_width(1536, 0.3, 64) == 1024 and ffn_keep_width(1536, 0.3, 1) == 1075
    assert ffn_keep_width(64, 0.25, 64) == 48  # no whole multiple left: the exact budget
    assert ffn_keep_width(1536, 0.0, 64) == 1536
    model = tiny()
    pruner = AnnealingPruner(remove_ffn=0.3, seed=0, ffn_multiple=16, show_progress=False)
    pruner.fit_apply(model, calibration)
    assert pruner.report_.ffn_width_after == 32 == model.config.intermediate_size  # 45 kept -> 32
    assert all(len(n) == 32 for n in pruner.kept_neurons_.values())
    with pytest.raises(ValueError, match="ffn_multiple"):
        AnnealingPruner(remove_ffn=0.3, ffn_multiple=0, show_progress=False).fit(tiny(), calibration)


def test_the_old_fraction_names_still_work_with_a_warning():
    """Issue 25: the fractions say they are removed (remove_heads, ...); heads=/--heads work for one release."""
    import warnings

    from sklearn.base import clone

    with pytest.warns(FutureWarning, match="AnnealingPruner heads= is deprecated: use remove_heads="):
        old = AnnealingPruner(heads=0.5, ffn=0.25, layers=0.1)
    assert old.get_params() == AnnealingPruner(remove_heads=0.5, remove_ffn=0.25, remove_layers=0.1).get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clone(old).get_params() == old.get_params()  # clone passes the new names: no warning
    with pytest.raises(TypeError, match="gives both heads= and remove_heads="):
        AnnealingPruner(heads=0.5, remove_heads=0.5)
    from hf_qselect.cli import build_parser

    with pytest.warns(FutureWarning, match="--heads is deprecated: use --remove-heads"):
        args = build_parser().parse_args(["prune", "m", "--data", "d.csv", "--heads", "0.3", "--out", "o"])
    assert args.remove_heads == 0.3 and not hasattr(args, "heads")
