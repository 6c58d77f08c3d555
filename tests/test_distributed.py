"""QSelectTrainer under two CPU processes (torchrun, gloo): one selection, on the main process, the same rows everywhere."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "distributed" / "select_once.py"


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(), reason="torchrun not installed")
def test_two_ranks_select_once_and_train_on_the_same_rows(tmp_path):
    from transformers import AutoTokenizer

    from hf_qselect.selection import default_embedder

    AutoTokenizer.from_pretrained(default_embedder()).save_pretrained(tmp_path / "tok")
    torchrun = str(Path(sys.executable).parent / "torchrun") if (Path(sys.executable).parent / "torchrun").exists() else "torchrun"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:  # a free loopback port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port), str(SCRIPT),
                           str(tmp_path / "tok"), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["fitted_here"] for r in ranks] == [True, False]  # only the main process ran the selection
    assert ranks[0]["indices"] == ranks[1]["indices"] and len(ranks[0]["indices"]) == 24
    assert ranks[0]["texts"] == ranks[1]["texts"] and ranks[0]["rows_trained"] == 24
