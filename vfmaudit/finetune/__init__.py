"""Robust fine-tuning: make an encoder's embeddings stable under chosen edits while it stays close
to the original (arXiv 2604.14973's objective), then export and check it like any other model.

Loaded on first use (the runner imports torch)."""

from vfmaudit.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"FinetuneConfig": "vfmaudit.finetune.config",
                                               "FinetuneResult": "vfmaudit.finetune.runner",
                                               "run_finetune": "vfmaudit.finetune.runner"})

__all__ = ["FinetuneConfig", "FinetuneResult", "run_finetune"]
