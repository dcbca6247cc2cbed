"""The typographic attack in downstream: a wrong class's name written onto each test image, and how
often the prediction becomes that class (the attack's success rate), beside a control that writes a
word that is no class name in the same place, size and colour.

Per test image i: the target is another class, (label + 1 + an integer below classes - 1) mod
classes from the generator (seed, TARGET_STREAM); the place, colour and control word come from the
generator (seed, i), the same at every level, so only the written word differs between attack and
control. The control rate is how often the prediction becomes the target when its name is not
written: the attack's effect is the gap between the two.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.perturb.families.typographic import WORDS, write_text

TARGET_STREAM = 0x5459504F  # "TYPO"


def targets(labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """A wrong class per image, drawn uniformly among the others."""
    rng = np.random.default_rng([int(seed), TARGET_STREAM])
    return (np.asarray(labels) + 1 + rng.integers(0, n_classes - 1, len(labels))) % n_classes


def control_words(class_names: list[str]) -> list[str]:
    names = {c.lower().replace("_", " ") for c in class_names}
    return [w for w in WORDS if w not in names]


def written(images: np.ndarray, words: list[str], level: float, seed: int) -> np.ndarray:
    """Each image with its word written at level, placed by the generator (seed, its index)."""
    return np.stack([write_text(img, word, level, np.random.default_rng([int(seed), i]))
                     for i, (img, word) in enumerate(zip(images, words))])


def words(labels: np.ndarray, class_names: list[str], seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """(the targets, each image's target name to write, each image's control word)."""
    target = targets(labels, len(class_names), seed)
    pool = control_words(class_names)
    pick = np.random.default_rng([int(seed), TARGET_STREAM, 1]).integers(0, len(pool), len(labels))
    return target, [class_names[t].replace("_", " ") for t in target], [pool[j] for j in pick]


def typographic_results(classifiers: dict, outcome, levels: list[float], attack: dict, control: dict,
                        target: np.ndarray, y: np.ndarray) -> dict:
    """Per classifier and level: success rate (prediction = target), control rate, accuracy under attack."""
    tasks = {}
    for task, (predict, *_) in classifiers.items():
        row = {"success_rate": [], "control_rate": [], "accuracy": []}
        for lv in levels:
            pred = outcome(predict(attack[lv]))[1]
            pred_control = outcome(predict(control[lv]))[1]
            row["success_rate"].append(float(np.mean(pred == target)))
            row["control_rate"].append(float(np.mean(pred_control == target)))
            row["accuracy"].append(float(np.mean(pred == y)))
        tasks[task] = row
    return {"levels": list(levels), "tasks": tasks}
