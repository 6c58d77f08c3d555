"""The model layer: a new family is one adapter; one gating hook; removal equals gating; sharded reloads; clear refusals."""
import copy
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig, DistilBertForSequenceClassification, GPT2Config,
                          GPT2ForSequenceClassification)

from hf_qselect.models import (Gates, ModelAdapter, adapter_for, remove_units, layer_unit_sets, load_pruned, register_adapter,
                               unregister_adapter, weight_files)
from hf_qselect.pruning import AnnealingPruner

PACKAGE = Path(__file__).parents[1] / "hf_qselect"


class DistilBertAdapter(ModelAdapter):
    """DistilBERT's layout (``transformer.layer[i]``, ``q_lin``/``out_lin``, ``ffn.lin1``/``lin2``): a family the
    library does not ship, added by this one class."""

    model_types = ("distilbert",)
    family = "DistilBERT (test)"
    _linears = {"query": ("attention.q_lin",), "key": ("attention.k_lin",), "value": ("attention.v_lin",),
                "attention_output": ("attention.out_lin",), "ffn_input": ("ffn.lin1",), "ffn_output": ("ffn.lin2",)}

    def layers(self, model):
        return getattr(getattr(getattr(model, "base_model", model), "transformer", None), "layer", None)

    def set_layers(self, model, kept):
        layers = self.layers(model)
        model.base_model.transformer.layer = nn.ModuleList([layers[i] for i in kept])

    def linear(self, layer, role):
        return self._linears[role]

    def head_dim(self, config):
        return config.dim // config.n_heads


@pytest.fixture
def distilbert_family():
    adapter = register_adapter(DistilBertAdapter)
    yield adapter
    unregister_adapter(adapter)


def calibration(n=32, vocab=120, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset.from_dict({"input_ids": [rng.integers(1, vocab, rng.integers(5, 12)).tolist() for _ in range(n)],
                              "labels": rng.integers(0, 2, n).tolist()})


def tiny_distilbert():
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=120, dim=32, n_heads=4, n_layers=3, hidden_dim=64, max_position_embeddings=32, num_labels=2)
    return DistilBertForSequenceClassification(config).eval()


def tiny_bert(layers=3):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


def masks_of(pruner, shape):
    """The pruner's kept heads and neurons as 0/1 gates of every layer."""
    masks = {}
    for layer in range(len(shape.heads_per_layer)):
        heads, neurons = np.zeros(shape.heads_per_layer[layer]), np.zeros(shape.ffn_per_layer[layer])
        heads[pruner.kept_heads_[layer]] = 1
        neurons[pruner.kept_neurons_[layer]] = 1
        masks[f"layer.{layer}.heads"], masks[f"layer.{layer}.ffn"] = heads, neurons
    return masks


def test_a_registered_family_prunes_and_its_pruned_logits_equal_the_gated_forward_pass(distilbert_family):
    model = tiny_distilbert()
    assert adapter_for(model) is distilbert_family
    pruner = AnnealingPruner(remove_heads=0.5, remove_ffn=0.5, seed=0, ffn_multiple=1, show_progress=False).fit(model, calibration())
    shape = pruner.shape_
    x = torch.randint(1, 120, (3, 9))
    gated_model = copy.deepcopy(model)
    with Gates(gated_model, layer_unit_sets(gated_model)) as gates, torch.no_grad():
        gates.set_masks(masks_of(pruner, shape))
        gated = gated_model(x).logits
    before = sum(p.numel() for p in model.parameters())
    pruner.apply(model)
    assert [len(h) for h in pruner.kept_heads_.values()] and pruner.report_.heads_after == 6
    assert model.distilbert.transformer.layer[0].ffn.lin1.out_features == 32
    assert sum(p.numel() for p in model.parameters()) < before
    with torch.no_grad():
        assert torch.allclose(model(x).logits, gated, atol=1e-5)


def test_removing_layers_in_a_registered_family(distilbert_family):
    model = tiny_distilbert()
    AnnealingPruner(remove_layers=0.34, seed=0, show_progress=False).fit_apply(model, calibration())
    assert len(model.distilbert.transformer.layer) == 2 and model.config.num_hidden_layers == 2


def test_an_unregistered_family_is_refused_naming_the_supported_ones():
    model = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, num_labels=2))
    with pytest.raises(TypeError, match=r"supports the BERT family \(bert, roberta.*got GPT2ForSequenceClassification \(model_type='gpt2'\)"):
        AnnealingPruner(remove_heads=0.5).fit(model, calibration())


def test_a_peft_wrapped_model_is_refused_with_the_fix():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(tiny_bert(), peft.LoraConfig(r=2, target_modules=["query", "value"]))
    with pytest.raises(TypeError, match=r"PEFT-wrapped .*merge_and_unload\(\)"):
        AnnealingPruner(remove_heads=0.5).fit(model, calibration())


def test_sharded_checkpoints_reload_with_identical_logits(tmp_path):
    model = tiny_bert()
    AnnealingPruner(remove_heads=0.5, remove_ffn=0.25, seed=0, show_progress=False).fit_apply(model, calibration())
    model.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
    assert len(weight_files(tmp_path / "sharded")) > 1
    x = torch.randint(1, 120, (2, 8))
    with torch.no_grad():
        assert torch.equal(load_pruned(tmp_path / "sharded")(x).logits, model(x).logits)


def test_apply_plan_builds_every_module_before_changing_the_model():
    model = tiny_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(IndexError):
        remove_units(model, [0, 1, 2], {0: [0, 9]}, {})
    assert model.state_dict().keys() == before.keys() and all(torch.equal(model.state_dict()[k], before[k]) for k in before)


def test_no_module_outside_the_model_layer_names_a_bert_attribute():
    pattern = re.compile(r"encoder\.layer|attention\.self|intermediate\.dense|output\.dense")
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if "models" not in p.relative_to(PACKAGE).parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_one_gating_hook():
    """Forward hooks that gate units are registered in the model layer only."""
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "models" not in p.relative_to(PACKAGE).parts
                 and re.search(r"register_forward(_pre)?_hook", p.read_text())]
    assert offenders == []
