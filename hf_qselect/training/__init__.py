"""Fine-tuning on the reduced data: ``QSelectTrainer``, ``QSelectConfig`` and YAML recipes."""
from .config import PruningArguments, QSelectConfig, SelectionArguments
from .recipes import RECIPE_DATACLASSES, DataArguments, ModelArguments, parse_recipe, run_recipe
from .finetune import short_finetune
from .editors import CompressionEditor, Editor, PruningEditor, SelectionEditor, SparsityEditor
from .trainer import QSelectTrainer

__all__ = ["CompressionEditor", "DataArguments", "Editor", "PruningEditor", "SelectionEditor", "SparsityEditor", "ModelArguments", "PruningArguments", "QSelectConfig", "QSelectTrainer", "RECIPE_DATACLASSES",
           "SelectionArguments", "parse_recipe", "run_recipe", "short_finetune"]
