"""Robust fine-tuning: make an encoder's embeddings stable under chosen edits while it stays close
to the original (arXiv 2604.14973's objective), then export and check it like any other model."""

from vfmaudit.finetune.config import FinetuneConfig
from vfmaudit.finetune.runner import FinetuneResult, run_finetune

__all__ = ["FinetuneConfig", "FinetuneResult", "run_finetune"]
