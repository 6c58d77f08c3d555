"""Decoder LMs (Llama, Qwen2, Mistral) through the model layer: grouped-query attention, every unit kind and method,
removal equal to the gated forward pass, generation before saving equal to after reloading, plain from_pretrained."""
import copy

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import (AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

from hf_qselect.models import Gates, SkipLayers, adapter_for, remove_units, layer_unit_sets, load_pruned, weight_files
from hf_qselect.pruning import AnnealingPruner
from hf_qselect.pruning.layer_drop import DropLosses, choose_drops, drop_qubo
from hf_qselect.qubo import AnnealSettings

from .conftest import fit_within_latency

FAMILIES = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM), "mistral": (MistralConfig, MistralForCausalLM)}
VOCAB = 100


def tiny(family="llama", layers=4, seed=0):
    config_class, model_class = FAMILIES[family]
    torch.manual_seed(seed)
    config = config_class(vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=6,
                          num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, tie_word_embeddings=False)
    return model_class(config).eval()


@pytest.fixture(scope="module")
def calibration():
    rng = np.random.default_rng(0)
    return Dataset.from_dict({"input_ids": [rng.integers(1, VOCAB, rng.integers(6, 14)).tolist() for _ in range(24)]})


def reference_logits(model, pruner, x):
    """The unpruned model with the pruner's dropped heads and neurons gated to 0 and its dropped layers skipped."""
    shape = pruner.shape_
    masks = {}
    for layer in range(len(shape.heads_per_layer)):
        heads, neurons = np.zeros(shape.heads_per_layer[layer]), np.zeros(shape.ffn_per_layer[layer])
        heads[pruner.kept_heads_.get(layer, [])] = 1
        neurons[pruner.kept_neurons_.get(layer, [])] = 1
        masks[f"layer.{layer}.heads"], masks[f"layer.{layer}.ffn"] = heads, neurons
    dropped = [l for l in range(len(shape.heads_per_layer)) if l not in pruner.kept_layers_]
    with Gates(model, layer_unit_sets(model)) as gates, SkipLayers(model, dropped), torch.no_grad():
        gates.set_masks(masks)
        return model(x).logits


CASES = [
    dict(remove_heads=0.5, remove_ffn=0.25, remove_layers=0.25),
    dict(remove_heads=0.34, head_unit="query", uniform=True, remove_ffn=0.5),
    dict(remove_heads=0.5, uniform=True, method="greedy"),
    dict(remove_layers=0.5, method="block_influence"),
    dict(remove_heads=0.5, remove_ffn=0.5, method="magnitude", uniform=True),
    dict(remove_heads=0.5, remove_ffn=0.5, remove_layers=0.25, method="random"),
    dict(remove_layers=0.25, method="greedy", layer_scores="pairs", pair_rows=8),
    dict(remove_heads=0.5, remove_ffn=0.5, per_layer_ffn=True),
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_pruned_logits_equal_the_gated_forward_pass(family, case, calibration):
    model = tiny(family)
    reference = copy.deepcopy(model)
    pruner = AnnealingPruner(seed=0, show_progress=False, ffn_multiple=1, **case).fit(model, calibration)
    pruner.apply(model)
    x = torch.randint(1, VOCAB, (2, 9))
    with torch.no_grad():
        assert torch.allclose(model(x).logits, reference_logits(reference, pruner, x), atol=1e-5)
    shape = adapter_for(model).shape(model)
    assert all(h % k == 0 for h, k in zip(shape.heads_per_layer, shape.kv_heads_per_layer))  # repeat_kv holds
    assert model.config.num_hidden_layers == len(pruner.kept_layers_) == len(model.model.layers)
    if case.get("remove_heads") and case.get("head_unit") == "query":
        assert shape.heads_per_layer == (4,) * 4 and shape.kv_heads_per_layer == (2,) * 4  # two of three query heads per group
    elif case.get("remove_heads"):
        assert set(shape.kv_heads_per_layer) == {1} and set(shape.heads_per_layer) == {3}  # one of two key/value groups


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_uniform_pruning_reloads_with_plain_from_pretrained_and_generates_the_same_tokens(family, calibration, tmp_path):
    model = tiny(family)
    AnnealingPruner(remove_heads=0.5, remove_ffn=0.5, remove_layers=0.25, uniform=True, seed=0, show_progress=False, ffn_multiple=1).fit_apply(model, calibration)
    x = torch.randint(1, VOCAB, (1, 7))
    before = model.generate(x, max_new_tokens=8, do_sample=False)
    model.save_pretrained(tmp_path / "m")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    assert (plain.config.num_attention_heads, plain.config.num_key_value_heads, plain.config.num_hidden_layers) == (3, 1, 3)
    assert torch.equal(plain.generate(x, max_new_tokens=8, do_sample=False), before)
    with torch.no_grad():
        assert torch.equal(plain(x).logits, model(x).logits)


def test_per_layer_shapes_reload_with_load_pruned_from_sharded_files(tmp_path):
    model = tiny("qwen2")
    remove_units(model, [0, 1, 2, 3], {0: [0, 1, 2], 1: [0, 3], 2: [3, 4, 5]}, {1: list(range(40)), 3: list(range(20))})
    x = torch.randint(1, VOCAB, (1, 6))
    before = model.generate(x, max_new_tokens=6, do_sample=False)
    model.save_pretrained(tmp_path / "m", max_shard_size="60KB")
    assert len(weight_files(tmp_path / "m")) > 1
    again = load_pruned(tmp_path / "m", AutoModelForCausalLM)
    assert adapter_for(again).shape(again).heads_per_layer == (3, 2, 3, 6)
    assert adapter_for(again).shape(again).kv_heads_per_layer == (1, 2, 1, 2)
    assert torch.equal(again.generate(x, max_new_tokens=6, do_sample=False), before)


def test_per_layer_ffn_widths_keep_the_uniform_total_and_reload_with_load_pruned(calibration, tmp_path):
    model = tiny("mistral")
    pruner = AnnealingPruner(remove_ffn=0.5, per_layer_ffn=True, ffn_multiple=8, seed=0, show_progress=False).fit(model, calibration)
    widths = pruner.report_.ffn_per_layer_after
    assert sum(widths) == 4 * 32 and all(w % 8 == 0 and 8 <= w <= 64 for w in widths) and len(set(widths)) > 1
    assert [len(pruner.kept_neurons_[l]) for l in pruner.kept_layers_] == widths
    assert pruner.report_.ffn_width_after == 32 and "per layer" in pruner.report_.summary()
    pruner.apply(model)
    from hf_qselect.hub.model_card import render_model_card

    card = render_model_card(model_name="m", base_model=None, log_history=[], selection=None, selection_seconds=0.0, rows_before=None,
                             pruning=pruner.report_.to_dict(), training={}, pipeline_tag="text-generation")
    assert f"32 (mean; per layer {widths})" in str(card)
    assert list(adapter_for(model).shape(model).ffn_per_layer) == widths
    x = torch.randint(1, VOCAB, (1, 6))
    before = model.generate(x, max_new_tokens=6, do_sample=False)
    model.save_pretrained(tmp_path / "m")
    again = load_pruned(tmp_path / "m", AutoModelForCausalLM)
    assert list(adapter_for(again).shape(again).ffn_per_layer) == widths
    assert torch.equal(again.generate(x, max_new_tokens=6, do_sample=False), before)


def test_per_layer_widths_keep_the_most_valuable_blocks_as_an_exhaustive_search_does():
    from itertools import product

    from hf_qselect.pruning.units import per_layer_widths

    rng = np.random.default_rng(3)
    importance = [rng.gamma(shape, size=12) for shape in (0.5, 2.0, 1.0)]  # layers that matter differently
    step, keep = 3, 6
    widths = per_layer_widths(importance, keep, step)

    def kept_value(ws):
        return sum(np.sort(v)[::-1][:w].sum() for v, w in zip(importance, ws))

    options = [ws for ws in product(range(step, 13, step), repeat=3) if sum(ws) == keep * 3]
    assert sum(widths) == 18 and all(w % step == 0 and w >= step for w in widths)
    assert kept_value(widths) == pytest.approx(max(kept_value(ws) for ws in options))
    assert per_layer_widths(importance, 5, 3) != widths and sum(per_layer_widths(importance, 5, 3)) == 15  # 5 is not a multiple of 3: single neurons


def test_a_plan_with_unequal_query_heads_per_group_is_refused_before_any_change():
    model = tiny()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="same number of query heads in every kept key/value group"):
        remove_units(model, [0, 1, 2, 3], {0: [0, 1, 3]}, {})
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_completion_only_labels_are_the_loss(calibration):
    """Rows with list-valued labels (-100 on the prompt) score on the completion tokens only."""
    model = tiny()
    masked = calibration.map(lambda row: {"labels": [-100] * (len(row["input_ids"]) // 2) + row["input_ids"][len(row["input_ids"]) // 2:]})
    a = AnnealingPruner(remove_heads=0.5, method="greedy", seed=0, show_progress=False).fit(model, calibration)
    b = AnnealingPruner(remove_heads=0.5, method="greedy", seed=0, show_progress=False).fit(model, masked)
    assert not np.allclose(np.concatenate(a.scores_.head_importance), np.concatenate(b.scores_.head_importance))


def test_the_layer_drop_qubo_energy_is_the_modelled_loss_and_can_overrule_the_ranking():
    single = np.array([0.1, 0.2, 0.3, 0.15])
    pair = np.array([2.0, 0.6, 0.5])  # dropping 0 and 1 together is far worse than apart
    losses = DropLosses(base=1.0, single=single, pair=pair)
    qubo = drop_qubo(losses, 2)
    scale = single.mean()
    for x in ([1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0]):
        x = np.array(x)
        modelled = single @ x + sum((pair[i] - single[i] - single[i + 1]) * x[i] * x[i + 1] for i in range(3))
        assert qubo.energy(x) == pytest.approx(modelled / scale)
    settings = AnnealSettings(solver="exact", seed=0, n_jobs=1, show_progress=False)
    greedy, _ = choose_drops(losses, 2, "greedy", settings)
    annealed, _ = choose_drops(losses, 2, "qubo", settings)
    assert greedy == [0, 3] and annealed == [0, 3]
    losses.pair[2] = 0.1  # now 2 and 3 together cost less than either apart
    assert choose_drops(losses, 2, "qubo", settings)[0] == [2, 3] and choose_drops(losses, 2, "greedy", settings)[0] == [0, 3]


@pytest.mark.parametrize("kwargs, match", [
    (dict(remove_heads=0.9, head_unit="query"), "would leave no query head in a key/value group"),
    (dict(remove_heads=0.9, uniform=True), "would remove every key/value group"),
    (dict(remove_heads=0.5, method="block_influence"), "block_influence.*ranks whole layers"),
    (dict(remove_ffn=0.5, per_layer_ffn=True, uniform=True), "per_layer_ffn=True gives every layer its own FFN width"),
])
def test_budgets_that_empty_a_group_or_a_layer_are_refused_before_work(kwargs, match, calibration):
    with pytest.raises(ValueError, match=match):
        AnnealingPruner(show_progress=False, **kwargs).fit(tiny(), calibration)


def test_calibration_rows_without_tokens_and_unsupported_families_are_named(calibration):
    with pytest.raises(KeyError, match="no 'input_ids' column"):
        AnnealingPruner(remove_heads=0.5).fit(tiny(), Dataset.from_dict({"text": ["a b c"] * 4}))
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50))
    with pytest.raises(TypeError, match=r"the BERT family .*; the Llama family \(llama, qwen2, mistral\); got GPT2LMHeadModel"):
        AnnealingPruner(remove_heads=0.5).fit(gpt2, calibration)


def gated_logits(model, heads: dict[int, list[int]], neurons: dict[int, list[int]], x):
    """The unpruned model with everything not kept gated to 0 (what removal must reproduce)."""
    shape = adapter_for(model).shape(model)
    masks = {}
    for layer in range(len(shape.heads_per_layer)):
        h, n = np.zeros(shape.heads_per_layer[layer]), np.zeros(shape.ffn_per_layer[layer])
        h[heads[layer]], n[neurons[layer]] = 1, 1
        masks[f"layer.{layer}.heads"], masks[f"layer.{layer}.ffn"] = h, n
    with Gates(model, layer_unit_sets(model)) as gates, torch.no_grad():
        gates.set_masks(masks)
        return model(x).logits


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_compression_of_a_grouped_query_decoder_keeps_whole_groups_and_its_size_model(family, calibration, tmp_path):
    from hf_qselect.compression import AnnealingCompressor, load_compressed, save_compressed
    from hf_qselect.compression.quantize import weight_bytes

    model = tiny(family)
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    fp32 = sum(p.numel() * 4 for p in model.parameters() if id(p) not in skip)  # every weight but the token tables
    assert weight_bytes(model)[0] == fp32
    c = AnnealingCompressor(budget="45%", ffn_block=16, seed=0, show_progress=False).fit(model, calibration)
    assert c.report_.predicted_bytes_before == fp32
    heads, neurons = c.choice_.kept_heads(c.layout_), c.choice_.kept_neurons(c.layout_)
    for layer, kept in heads.items():  # whole key/value groups: query heads 0-2 or 3-5, never a part of one
        assert kept and len(kept) % 3 == 0
        assert sorted(kept) == [g * 3 + j for g in sorted({h // 3 for h in kept}) for j in range(3)]
    x = torch.tensor([[5, 9, 12, 30, 7, 2]])
    reference = gated_logits(model, heads, neurons, x)
    c.prune(model)
    with torch.no_grad():
        assert torch.allclose(model(x).logits, reference, atol=1e-5)  # removal = the gated forward pass
    c.quantize(model)
    assert weight_bytes(model)[0] == c.report_.predicted_bytes_after == c.report_.bytes_after["non_embedding"] <= 0.45 * fp32
    out = save_compressed(model, tmp_path / "int8")
    again = load_compressed(out)
    assert type(again) is type(model)
    with torch.no_grad():
        assert torch.equal(again(x).logits, model(x).logits)
    tokens = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(again.generate(x, **tokens), model.generate(x, **tokens))


def test_a_compressed_decoder_with_tied_embeddings_saves_once_and_reloads_tied(calibration, tmp_path):
    from safetensors import safe_open

    from hf_qselect.compression import AnnealingCompressor, load_compressed, save_compressed

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=6,
                                         num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, tie_word_embeddings=True)).eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    AnnealingCompressor(budget="45%", ffn_block=16, seed=0, show_progress=False).fit(model, calibration).apply(model)
    out = save_compressed(model, tmp_path / "int8")
    with safe_open(str(out / "model.safetensors"), "pt") as stored:
        assert "model.embed_tokens.weight" in stored.keys() and "lm_head.weight" not in stored.keys()  # the shared table once
    again = load_compressed(out)
    assert again.lm_head.weight is again.model.embed_tokens.weight
    x = torch.tensor([[5, 9, 12, 30]])
    with torch.no_grad():
        assert torch.equal(again(x).logits, model(x).logits)


def test_compression_slices_a_groups_rows_per_projection(calibration):
    from hf_qselect.compression.layout import build_layout
    from hf_qselect.compression.sensitivity import unit_slices

    model = tiny("qwen2")  # q, k and v carry biases
    layout = build_layout(model, 16)
    qkv = next(m for m, mod in enumerate(layout.modules) if mod.layer == 0 and mod.role == "qkv")
    layer = adapter_for(model).layers(model)[0]
    assert [list(layout.units[u].members) for u in layout.modules[qkv].units] == [[0, 1, 2], [3, 4, 5]]
    assert layout.modules[qkv].unit_weights == [(3 * 8 + 2 * 8) * 48] * 2 and layout.modules[qkv].unit_biases == [5 * 8] * 2
    for proj, width in (("q_proj", 24), ("k_proj", 8), ("v_proj", 8)):
        slices = unit_slices(layout, qkv, getattr(layer.self_attn, proj))
        assert [(s.start, s.stop) for s, rows in slices] == [(0, width), (width, 2 * width)] and all(rows for _, rows in slices)
    out = next(m for m, mod in enumerate(layout.modules) if mod.layer == 0 and mod.role == "attention_output")
    assert [(s.start, s.stop, rows) for s, rows in unit_slices(layout, out, layer.self_attn.o_proj)] == [(0, 24, False), (24, 48, False)]


def test_a_latency_budget_on_grouped_query_attention_times_whole_groups_and_keeps_within_it(calibration):
    from hf_qselect.compression import AnnealingCompressor

    model = tiny()
    settings = dict(budget=None, latency_batch=2, latency_length=16, seed=0, show_progress=False, ffn_block=16)
    probe = AnnealingCompressor(latency_ms=1e6, **settings).fit(model, calibration)
    table = probe.report_.latency_table
    assert "attention core per head unit (2 units of 3 query heads)" in table and "whole model fp32" in table
    assert any(key.startswith("qkv 48->") for key in table)
    c = AnnealingCompressor(latency_ms=0.7 * probe.report_.cost_before, **settings)
    if not fit_within_latency(c, model, calibration):
        return
    reference = copy.deepcopy(model)
    c.apply(model)
    assert all(h % 3 == 0 and h >= 3 for h in adapter_for(model).shape(model).heads_per_layer)  # whole key/value groups
    x = torch.randint(1, VOCAB, (1, 7))
    with torch.no_grad():
        assert model(x).logits.shape == reference(x).logits.shape


def test_subnetwork_selection_runs_on_a_decoder_through_the_same_gating_hook():
    from transformers import AutoTokenizer

    from hf_qselect.selection.embeddings import default_embedder
    from hf_qselect.subnetworks import SubnetworkSelector

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128,
                                         pad_token_id=tokenizer.pad_token_id)).eval()
    texts = ["good film", "great plot", "lovely", "fine work", "bad film", "awful plot", "dull", "poor work"] * 3
    data = Dataset.from_dict({"text": texts, "label": [1, 1, 1, 1, 0, 0, 0, 0] * 3})
    selector = SubnetworkSelector(units=("ffn",), keep=0.5, rounds=2, batch_size=8, show_progress=False).fit(model, data, tokenizer=tokenizer)
    assert selector.report_["kept"] == {"layer.0.ffn": 32, "layer.1.ffn": 32}
    enc = tokenizer(texts[:4], padding=True, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        with selector.masked(model):
            masked = model.model(**enc).last_hidden_state
        pruned = selector.apply(copy.deepcopy(model))
        assert pruned.config.intermediate_size == 32 and torch.allclose(pruned.model(**enc).last_hidden_state, masked, atol=1e-5)


def test_lora_recovery_trains_merges_and_leaves_a_plain_model_of_the_same_shape(calibration, tmp_path):
    pytest.importorskip("peft")
    from hf_qselect.pruning import lora_recover
    from hf_qselect.pruning.layer_drop import mean_loss
    from hf_qselect.models import calibration_batches

    model = tiny()
    pruner = AnnealingPruner(remove_heads=0.5, remove_ffn=0.5, uniform=True, seed=0, show_progress=False, ffn_multiple=1).fit(model, calibration)
    pruner.apply(model)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    batches = list(calibration_batches(calibration, 8, torch.device("cpu"), 0, causal=True))
    with torch.no_grad():
        before = mean_loss(model.eval(), batches)
    recovered, record = lora_recover(model, calibration, steps=30, batch_size=8, learning_rate=5e-3, show_progress=False)
    pruner.report_.recovery = record
    assert type(recovered).__name__ == "LlamaForCausalLM" and {k: v.shape for k, v in recovered.state_dict().items()} == shapes
    with torch.no_grad():
        assert mean_loss(recovered, batches) < before
    assert record["target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert "recovered by lora (30 steps x 8 rows)" in pruner.report_.summary()
    recovered.save_pretrained(tmp_path / "r")
    x = torch.randint(1, VOCAB, (1, 5))
    with torch.no_grad():
        assert torch.equal(AutoModelForCausalLM.from_pretrained(tmp_path / "r")(x).logits, recovered(x).logits)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        lora_recover(recovered, calibration, steps=0)


def test_layer_rounds_remeasure_the_drop_losses_without_the_layers_already_dropped():
    rng = np.random.default_rng(1)
    rows = Dataset.from_dict({"input_ids": [rng.integers(1, VOCAB, 10).tolist() for _ in range(8)]})  # equal lengths: no padding
    model = tiny(layers=5)
    pruner = AnnealingPruner(remove_layers=0.4, method="greedy", layer_rounds=2, pair_rows=8, seed=0, show_progress=False).fit(model, rows)
    ids = torch.tensor(rows["input_ids"])

    def loss(skipped):
        with SkipLayers(model, skipped), torch.no_grad():
            return float(model(input_ids=ids, labels=ids).loss)

    first = [loss([i]) - loss([]) for i in range(5)]
    assert pruner.report_.layer_drop_losses["single"] == pytest.approx(first, rel=1e-4, abs=1e-6)
    gone = int(np.argmin(first))
    later = pruner.report_.layer_drop_losses["later_rounds"]
    assert len(later) == 1 and later[0]["dropped_before"] == [gone]
    remaining = [i for i in range(5) if i != gone]
    second = [loss([gone, i]) - loss([gone]) for i in remaining]
    assert later[0]["single"] == pytest.approx(second, rel=1e-4, abs=1e-6)
    assert later[0]["pair"] == pytest.approx([loss([gone, a, b]) - loss([gone]) for a, b in zip(remaining, remaining[1:])], rel=1e-4, abs=1e-6)
    assert sorted(set(range(5)) - set(pruner.kept_layers_)) == sorted([gone, remaining[int(np.argmin(second))]])
