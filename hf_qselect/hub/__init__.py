"""Publishing: Hub-ready folders of reduced datasets, dataset and model cards, the selection map."""
from .model_card import render_model_card
from .publish import REPORT_FILE, SOURCE_INDEX, check_repo_id, load_reduced, publish_reduced, with_source_index

__all__ = ["REPORT_FILE", "SOURCE_INDEX", "check_repo_id", "load_reduced", "publish_reduced", "render_model_card", "with_source_index"]
