"""Every application's fixed-seed answer on small models equals the one recorded before the model-layer refactor.

``tests/golden/golden.json`` was written by ``tests/golden/make_golden.py`` on the commit before the change; the
selection masks, pruning plans, compression choices, subnetwork masks and classifier-head weights must stay
exactly as they were, so every published figure stands.
"""
import json
from pathlib import Path

import pytest

from tests.golden import make_golden

GOLDEN = json.loads((Path(__file__).parent / "golden" / "golden.json").read_text())


@pytest.mark.parametrize("part", sorted(make_golden.PARTS))
def test_fixed_seed_answers_are_unchanged(part):
    assert json.loads(json.dumps(make_golden.PARTS[part](), sort_keys=True)) == GOLDEN[part]
