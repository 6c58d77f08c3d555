"""The benchmark scripts run end to end on tiny data (their figures come from full runs, not from here)."""
import json
import sys
from pathlib import Path

import pytest
from datasets import Dataset

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))


@pytest.mark.parametrize("evaluation", ["probe", "finetune"])
def test_selection_benchmark_smoke(sentences, tmp_path, monkeypatch, evaluation):
    import selection
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection.embeddings import default_embedder

    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data.csv"
    Dataset.from_dict({"text": list(sentences["text"]) * 3, "label": list(sentences["label"]) * 3}).to_csv(str(data))
    methods = "full,random,qubo,e2sc" if evaluation == "probe" else "full,qubo"  # every method's path is the probe's; fine-tuning once is enough
    argv = ["--datasets", str(data), "--methods", methods, "--keep", "0.75,0.5", "--folds", "2",
            "--eval", evaluation, "--out", str(tmp_path / "out"), "--name", "smoke"] + (["--repeats", "2"] if evaluation == "probe" else [])
    if evaluation == "finetune":
        tokenizer = AutoTokenizer.from_pretrained(default_embedder())
        tiny = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                                        num_attention_heads=2, intermediate_size=64, num_labels=2))
        tiny.save_pretrained(tmp_path / "tiny")
        tokenizer.save_pretrained(tmp_path / "tiny")
        argv += ["--model", str(tmp_path / "tiny"), "--max-steps", "2"]
    selection.main(argv)
    result = json.loads((tmp_path / "out" / f"smoke_{evaluation}.json").read_text())
    scores = result["datasets"][str(data)]["macro_f1"]
    assert set(scores) == set(methods.split(",")) and len(scores["qubo"]["0.5"]) == (4 if evaluation == "probe" else 2)
    assert all(0.0 <= f1 <= 1.0 for by_keep in scores.values() for fs in by_keep.values() for f1 in fs)
    table = (tmp_path / "out" / f"smoke_{evaluation}.md").read_text()
    assert "reduction without loss" in table and (tmp_path / "out" / f"smoke_{evaluation}.png").exists()
    assert ("training seconds per fold" in table) == (evaluation == "finetune")
    assert ("2 optimizer steps for every run" in table) == (evaluation == "finetune")
    assert ("4 paired splits (2 x 2-fold)" in table) == (evaluation == "probe")  # paired intervals for repeated splits
    assert not (tmp_path / "out" / f"smoke_{evaluation}.partial.json").exists()


@pytest.fixture
def tiny_model_and_data(sentences, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection.embeddings import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    data = tmp_path / "data.csv"
    Dataset.from_dict({"text": list(sentences["text"]) * 4, "label": list(sentences["label"]) * 4}).to_csv(str(data))
    return str(tmp_path / "tiny"), str(data)


def test_trainer_benchmark_smoke(tiny_model_and_data, tmp_path, monkeypatch):
    import trainer as bench

    model, data = tiny_model_and_data
    bench.main(["--dataset", data, "--model", model, "--seeds", "0", "--epochs", "1", "--block-size", "20", "--out", str(tmp_path / "out")])
    table = (tmp_path / "out" / "trainer.md").read_text()
    assert "| full | 76 |" in table and "| qubo | 38 |" in table and "| random | 38 |" in table


def test_pruning_benchmark_smoke(tiny_model_and_data, tmp_path):
    import pruning as bench

    model, data = tiny_model_and_data
    bench.main(["--dataset", data, "--model", model, "--budgets", "0.5,0.5,0", "--rows", "16", "--repeats", "1", "--out", str(tmp_path / "out")])
    rows = json.loads((tmp_path / "out" / "pruning.json").read_text())["rows"]
    assert set(rows) == {"unpruned", "unpruned +1 epoch", "greedy heads 0.5 ffn 0.5", "qubo heads 0.5 ffn 0.5"}
    assert rows["qubo heads 0.5 ffn 0.5"]["params"] < rows["unpruned"]["params"]
    assert all(r["rows_per_second"] > 0 for r in rows.values())
    after = rows["qubo heads 0.5 ffn 0.5"]["pruning_metrics"]["after"]
    assert 0.0 <= after["macro_f1"] <= 1.0 and "pruning_metrics" not in rows["unpruned"]
    table = (tmp_path / "out" / "pruning.md").read_text()
    assert f"| qubo heads 0.5 ffn 0.5 | {after['macro_f1']:.4f} |" in table and "| unpruned | – |" in table


def test_ffn_width_benchmark_smoke(tiny_model_and_data, tmp_path):
    import ffn_width as bench

    model, _ = tiny_model_and_data
    bench.main(["--model", model, "--widths", "64,32", "--heads-removed", "1", "--rows", "8", "--repeats", "1", "--out", str(tmp_path)])
    table = (tmp_path / "ffn_width.md").read_text()
    assert "| unpruned |" in table and "| heads -1, FFN 32 |" in table


def test_reduction_table_stops_at_the_first_dip():
    import selection

    scores = {"full": {"1.0": [0.80]}, "a": {"0.75": [0.795], "0.5": [0.78], "0.25": [0.795]}, "b": {"0.75": [0.70], "0.5": [0.80], "0.25": [0.80]}}
    table = selection.reduction_table({"datasets": {"d": {"macro_f1": scores}}}, [0.75, 0.5, 0.25])
    assert "| d | a | 0.75 | 25% |" in table  # 0.5 is 2 points down, so 0.25 does not count
    assert "| d | b | none | 0% |" in table


def test_selection_merge_replaces_only_the_rerun_methods(sentences, tmp_path, monkeypatch):
    import selection

    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data.csv"
    Dataset.from_dict({"text": list(sentences["text"]) * 3, "label": list(sentences["label"]) * 3}).to_csv(str(data))
    common = ["--datasets", str(data), "--folds", "2", "--out", str(tmp_path / "out"), "--name", "m", "--repeats", "1"]
    selection.main(common + ["--methods", "full,random,qubo", "--keep", "0.75,0.5"])
    path = tmp_path / "out" / "m_probe.json"
    before = json.loads(path.read_text())["datasets"][str(data)]["macro_f1"]
    selection.main(common + ["--methods", "random@class_balance=0.5,qubo@polish=False", "--keep", "0.5", "--merge"])
    after = json.loads(path.read_text())
    scores = after["datasets"][str(data)]["macro_f1"]
    assert after["args"]["methods"] == "full,random,qubo,random@class_balance=0.5,qubo@polish=False"
    assert scores["full"] == before["full"] and scores["random"] == before["random"] and scores["qubo"] == before["qubo"]
    assert set(scores["qubo@polish=False"]) == {"0.5"} and len(scores["qubo@polish=False"]["0.5"]) == 2
    assert "qubo@polish=False" in (tmp_path / "out" / "m_probe.md").read_text()
    with pytest.raises(ValueError, match="folds=3"):
        selection.main(common[:2] + ["--folds", "3"] + common[4:] + ["--methods", "random", "--keep", "0.5", "--merge"])


def test_subnetworks_digits_benchmark_smoke():
    import subnetworks

    result = subnetworks.run_digits([0.5], seeds=1, methods=["random", "qubo"])
    table = subnetworks.digits_table(result, [0.5], ["random", "qubo"])
    accuracies = {r["method"]: r["accuracy"] for r in result["rows"]}
    assert set(accuracies) == {"trained", "open", "random", "qubo"} and all(0.0 <= a <= 1.0 for a in accuracies.values())
    assert "| qubo |" in table and "| trained (all units, weights trained) |" in table


def test_compression_benchmark_smoke(sentences, tmp_path, monkeypatch):
    import compression
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hf_qselect.selection.embeddings import default_embedder

    monkeypatch.setenv("HF_QSELECT_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data.csv"
    Dataset.from_dict({"text": list(sentences["text"]) * 3, "label": list(sentences["label"]) * 3}).to_csv(str(data))
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    tiny = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=4, intermediate_size=128, num_labels=2))
    tiny.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    compression.main(["--datasets", str(data), "--model", str(tmp_path / "tiny"), "--budgets", "30%", "--latency-budgets", "", "--rounds", "1", "--repeats", "1",
                      "--train-rows", "48", "--test-rows", "24", "--out", str(tmp_path / "out"), "--name", "smoke"])
    result = json.loads((tmp_path / "out" / "smoke.json").read_text())
    entries = result["summary"][str(data)]
    assert {"fp32 +1 epoch", "int8 everywhere", "fallback 30%", "qubo 30%", "qubo 30% penalty", "ONNX qubo 30%"} <= set(entries)
    assert entries["qubo 30%"]["non_embedding_mb"] <= 0.3 * entries["fp32 +1 epoch"]["non_embedding_mb"] + 1e-9
    assert (tmp_path / "out" / "smoke.png").exists() and "x smaller" in (tmp_path / "out" / "smoke.md").read_text()
    compression.main(["--datasets", str(data), "--model", str(tmp_path / "tiny"), "--budgets", "30%", "--latency-budgets", "", "--fit-only",
                      "--train-rows", "48", "--test-rows", "24", "--out", str(tmp_path / "out"), "--name", "fits"])
    fits = json.loads((tmp_path / "out" / "fits.json").read_text())["results"][str(data)]["0"]
    assert set(fits) == {"fallback 30%", "qubo 30%"} and all(f["cost"] <= f["limit"] for f in fits.values())
    assert "QUBO lower / equal / higher" in (tmp_path / "out" / "fits.md").read_text()


def test_scale_benchmark_smoke(tmp_path):
    """Two sizes, each in its own process, the second out of core from a float16 file through the chunked path."""
    import scale

    scale.main(["--rows", "2000,4000", "--dim", "16", "--classes", "3", "--epoch-sample", "0", "--chunk-rows", "800",
                "--memmap", str(tmp_path / "mm"), "--out", str(tmp_path / "out"), "--name", "smoke"])
    result = json.loads((tmp_path / "out" / "smoke.json").read_text())
    assert [r["rows"] for r in result["results"]] == [2000, 4000] and len(result["slopes"]) == 1
    for r in result["results"]:
        assert r["n_kept"] == r["rows"] // 2 and r["embeddings"].startswith("float16")
        assert ("jobs_anneal" in r["phases"]) == (r["rows"] == 4000)  # classes of ~1,333 rows are cut into chunks of 800
    assert (tmp_path / "mm" / "embeddings_4000x16_c3_s0.npy").exists()
    assert "| 4,000 |" in (tmp_path / "out" / "smoke.md").read_text()


@pytest.fixture
def sft_inputs(tmp_path):
    """A tiny Llama and a data folder shaped like ../shared/data (alpaca/alpaca_data.json, gsm8k/test.jsonl)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from hf_qselect.selection.embeddings import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    tokenizer.eos_token = tokenizer.sep_token
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                 pad_token_id=tokenizer.pad_token_id)).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    topics = ["cooking", "taxes", "football", "poetry", "rivers"]
    (tmp_path / "data" / "alpaca").mkdir(parents=True)
    (tmp_path / "data" / "gsm8k").mkdir()
    rows = [{"instruction": f"Say something about {topics[i % 5]} {i}", "input": "", "output": "" if i == 3 else f"{topics[i % 5]} fact {i}."}
            for i in range(40)]
    (tmp_path / "data" / "alpaca" / "alpaca_data.json").write_text(json.dumps(rows))
    (tmp_path / "data" / "gsm8k" / "test.jsonl").write_text("\n".join(
        json.dumps({"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}) for i in range(10)))
    return tmp_path


def test_sft_benchmark_smoke(sft_inputs, monkeypatch):
    import sft

    monkeypatch.setenv("HF_QSELECT_CACHE", str(sft_inputs / "cache"))
    argv = ["--pool", "20", "--eval-rows", "4", "--keeps", "0.5,0.25", "--methods", "full,random,qubo,deita,semdedup", "--seeds", "0,1",
            "--max-length", "40", "--quality", "loss", "--model", str(sft_inputs / "llama"), "--data-dir", str(sft_inputs / "data"),
            "--out", str(sft_inputs / "out"), "--name", "smoke"]
    sft.main(argv)
    result = json.loads((sft_inputs / "out" / "smoke.json").read_text())
    assert len(result["runs"]) == 2 * (1 + 4 * 2) and result["rows"] == {"pool": 20, "alpaca_held_out": 4, "gsm8k": 4}
    assert {r["rows"] for r in result["runs"].values() if r["keep"] == 0.25} == {5}  # exactly round(keep x pool) rows
    assert all(set(r["loss"]) == {"alpaca", "gsm8k"} and all(v > 0 for v in r["loss"].values()) for r in result["runs"].values())
    table = (sft_inputs / "out" / "smoke.md").read_text()
    assert "| 0.25 | qubo | 5 |" in table and "Δ vs random" in table and (sft_inputs / "out" / "smoke.png").stat().st_size > 0
    before = (sft_inputs / "out" / "smoke.json").read_text()
    sft.main(argv + ["--resume"])  # every run is already there: nothing is trained again
    assert json.loads((sft_inputs / "out" / "smoke.json").read_text())["runs"] == json.loads(before)["runs"]


def test_sft_speed_benchmark_smoke(sft_inputs, monkeypatch):
    import sft_speed

    monkeypatch.setenv("HF_QSELECT_CACHE", str(sft_inputs / "cache"))
    sft_speed.main(["--rows", "30", "--timed-rows", "12", "--backends", "torch,onnx", "--repeats", "1", "--data-dir", str(sft_inputs / "data"),
                    "--out", str(sft_inputs / "out"), "--name", "speed"])
    result = json.loads((sft_inputs / "out" / "speed.json").read_text())
    assert set(result["backends"]) == {"torch", "onnx"} and result["backends"]["onnx"]["cosine_min"] >= 0.999
    from hf_qselect.selection import keep_count

    assert result["rows"] == 30 and result["default_selection"]["kept"] == keep_count(0.25, 30)  # rows with an empty output are skipped
    assert "x torch" in (sft_inputs / "out" / "speed.md").read_text()


@pytest.mark.parametrize("script, name", [("decoders", "decoders"), ("decoders", "decoders_rounds"),
                                          ("decoders", "decoders_depth_seed1"), ("decoder_compression", "decoder_compression"),
                                          ("decoder_compression", "decoder_compression_per_channel")])
def test_decoder_benchmark_tables_are_what_their_results_render(script, name):
    """The committed tables of the SmolLM2 runs (too slow for CI) are rendered from their committed results."""
    import importlib

    results = Path(__file__).parents[1] / "benchmarks" / "results"
    module = importlib.import_module(script)
    assert module.render(json.loads((results / f"{name}.json").read_text())) == (results / f"{name}.md").read_text()
