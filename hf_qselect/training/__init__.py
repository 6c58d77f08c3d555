"""Fine-tuning on the reduced data: ``QSelectTrainer``, ``QSelectConfig`` and YAML recipes."""
from .config import PruningArguments, QSelectConfig, SelectionArguments
from .recipes import RECIPE_DATACLASSES, DataArguments, ModelArguments, parse_recipe, run_recipe
from .finetune import short_finetune
from .causal_eval import held_out_loss, lora_epochs_score
from .editors import CompressionEditor, Editor, LoraEditor, PruningEditor, SelectionEditor, SparsityEditor
from .trainer import QSelectTrainer


def __getattr__(name: str):
    """``QSelectSFTTrainer`` / ``QSelectSFTConfig`` import TRL only when asked for."""
    if name in ("QSelectSFTConfig", "QSelectSFTTrainer"):
        from . import sft

        return getattr(sft, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["QSelectSFTConfig", "QSelectSFTTrainer", "CompressionEditor", "DataArguments", "Editor", "LoraEditor", "PruningEditor", "SelectionEditor", "SparsityEditor", "ModelArguments", "PruningArguments", "QSelectConfig", "QSelectTrainer", "RECIPE_DATACLASSES",
           "SelectionArguments", "held_out_loss", "lora_epochs_score", "parse_recipe", "run_recipe", "short_finetune"]
