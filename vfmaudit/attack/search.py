"""Oracle-gated edit search (Zhang et al., "Foundation Model-oriented Robustness", ICLR 2024,
Algorithm 1): compose catalogue edits step by step, each step the candidate (family x level) that
most increases the tested model's loss, accepted only while an oracle model still gives the image
its label; the search stops at the first rejected step.

Definitions (on the images whose clean version the oracle labels correctly, the approved ones):
SA is the tested model's accuracy on their clean versions, PA its accuracy on their last accepted
edits, FMR = PA / SA. Without labels the oracle's label of an image is its own nearest neighbour
in the clean gallery, and the result is the worst oracle-approved drift (cosine to the clean
embedding, divergence radius over the clean embedding and every accepted step's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from vfmaudit import perturb
from vfmaudit.errors import VfmauditError
from vfmaudit.metrics import cosine, divergence_radius, summarize

ORACLE_TEMPLATE = "an image of {}"  # the paper's prompt
CLASSIFIERS = ("auto", "zero-shot", "linear-probe", "knn")
ORACLE_MODES = ("auto", "zero-shot", "nearest")
KNN_K = 20
# why a search ended: the oracle rejected the best next edit; no edit raised the loss; max_edits
# edits were accepted; the query budget ran out; every family of the space is in the chain
STOPS = ("rejected", "no_gain", "max_edits", "budget", "exhausted")

LossFn = Callable[[np.ndarray, int], np.ndarray]  # (embeddings (M, D), image index) -> loss (M,)
OracleFn = Callable[[np.ndarray, int], np.ndarray]  # (images (M, H, W, 3), image index) -> approved (M,)


@dataclass
class Step:
    family: str
    level: float
    loss: float

    def to_json(self) -> dict:
        return {"family": self.family, "level": self.level, "loss": self.loss}


@dataclass
class Chain:
    """One image's search: the accepted edits in order, why it stopped, and what it cost."""
    steps: list[Step]
    stop: str
    queries: int  # encodes of the tested model (the budget's unit)
    oracle_queries: int
    image: np.ndarray  # the last accepted image (the clean one when no step was accepted)
    embeddings: list[np.ndarray]  # the tested model's embedding after each accepted step
    rejected: dict | None = None  # the best next edit the oracle turned down

    def spec(self) -> str:
        """The chain as `vfmaudit perturbations --apply` takes it: family:level,family:level."""
        return ",".join(f"{s.family}:{float(s.level)!r}" for s in self.steps)  # repr: the exact level back


def search_space(plans: list[perturb.FamilyPlan]) -> list[tuple[str, float]]:
    """Every (family, level) a step may choose: the plans' levels, less each family's identity."""
    space = []
    for p in plans:
        fam = perturb.get(p.name)
        space += [(p.name, float(lv)) for lv in p.levels if not fam.is_identity(lv)]
    if not space:
        raise VfmauditError("the search space is empty: pass perturbations with levels other than the identity",
                            param="perturbations")
    return space


def apply_chain(image: np.ndarray, chain: list[tuple[str, float]], seed: int) -> np.ndarray:
    """The edits in order on one uint8 (H, W, 3) image: what the search did, byte for byte."""
    out = image
    for name, level in chain:
        out = perturb.apply(out, name, level, seed)
    return out


def parse_chain(text: str) -> list[tuple[str, float]]:
    """'jpeg:30,brightness:1.4' -> [('jpeg', 30.0), ('brightness', 1.4)], each family and level checked."""
    chain = []
    for token in (t.strip() for t in (text or "").split(",")):
        if not token:
            continue
        name, sep, level = token.rpartition(":")
        try:
            value = float(level)
        except ValueError:
            value = None
        if not sep or value is None:
            raise VfmauditError(f"'{token}': write each edit as FAMILY:LEVEL, e.g. jpeg:30,brightness:1.4",
                                param="apply")
        chain.append((name, perturb.get(name).check_level(value)))
    if not chain:
        raise VfmauditError("the chain is empty; pass FAMILY:LEVEL,... (the chain attack.json records)",
                            param="apply")
    return chain


def search_image(index: int, clean: np.ndarray, clean_loss: float, encode: Callable[[np.ndarray], np.ndarray],
                 loss: LossFn, oracle: OracleFn, space: list[tuple[str, float]], max_edits: int, queries: int,
                 seed: int) -> Chain:
    """Algorithm 1 on one model-size image: greedy in the tested model's loss, gated by the oracle.

    Each step encodes every candidate left (a family is used at most once in a chain; the first
    `queries` left when the budget is short), takes the one of highest loss, and stops unless it
    raises the loss and the oracle approves it."""
    current, current_loss = clean, float(clean_loss)
    steps: list[Step] = []
    embeddings: list[np.ndarray] = []
    used = oracle_used = 0
    stop, rejected = "max_edits", None
    for _ in range(max_edits):
        taken = {s.family for s in steps}
        pool = [(name, level) for name, level in space if name not in taken]
        if not pool:
            stop = "exhausted"
            break
        if used >= queries:
            stop = "budget"
            break
        pool = pool[:queries - used]
        candidates = np.stack([perturb.apply(current, name, level, seed) for name, level in pool])
        emb = encode(candidates)
        used += len(pool)
        values = loss(emb, index)
        best = int(np.argmax(values))
        if not values[best] > current_loss:
            stop = "no_gain"
            break
        oracle_used += 1
        if not bool(oracle(candidates[best:best + 1], index)[0]):
            stop = "rejected"
            rejected = {"family": pool[best][0], "level": pool[best][1], "loss": float(values[best])}
            break
        current, current_loss = candidates[best], float(values[best])
        steps.append(Step(pool[best][0], pool[best][1], current_loss))
        embeddings.append(emb[best])
    return Chain(steps=steps, stop=stop, queries=used, oracle_queries=oracle_used, image=current,
                 embeddings=embeddings, rejected=rejected)


def drift(clean_embedding: np.ndarray, chain: Chain) -> tuple[float, float]:
    """(cosine of the last accepted image to the clean embedding, divergence radius of the ball over the
    clean embedding and every accepted step's): 1 and 0 for an empty chain."""
    if not chain.embeddings:
        return 1.0, 0.0
    pts = np.stack([clean_embedding] + chain.embeddings)
    return cosine(clean_embedding, chain.embeddings[-1][None]), float(divergence_radius(pts))


def fmr_figures(approved: np.ndarray, correct_clean: np.ndarray, correct_final: np.ndarray) -> dict:
    """SA, PA and FMR = PA / SA on the oracle-approved images (None where undefined)."""
    n = int(approved.sum())
    sa = float(correct_clean[approved].mean()) if n else None
    pa = float(correct_final[approved].mean()) if n else None
    return {"approved": n, "sa": sa, "pa": pa, "fmr": (pa / sa) if n and sa else None}


def summary(rows: list[dict], labelled: bool) -> dict:
    """The figures over the approved images: drift, steps, stops and (labelled) SA, PA and FMR."""
    searched = [r for r in rows if r["oracle_clean"]]
    cos = [r["cosine"] for r in searched]
    radius = [r["divergence_radius"] for r in searched]
    stops = {s: sum(r["stop"] == s for r in searched) for s in STOPS}
    out = {"images": len(rows), "approved": len(searched), "cosine": summarize(cos, True),
           "divergence_radius": summarize(radius, False),
           "steps_mean": float(np.mean([len(r["chain"]) for r in searched])) if searched else None,
           "queries_mean": float(np.mean([r["queries"] for r in searched])) if searched else None,
           "stops": stops}
    if labelled:
        approved = np.array([r["oracle_clean"] for r in rows], bool)
        out.update(fmr_figures(approved, np.array([bool(r["correct_clean"]) for r in rows]),
                               np.array([bool(r["correct_final"]) for r in rows])))
    return out
