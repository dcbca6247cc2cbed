"""White-box attacks on a torch encoder in embedding space: PGD (random start, momentum, as
RobustVLM's) and APGD (the step-size rule of Croce & Hein, 2020), with any embedding loss.

Each attack maximises loss(f(x + delta), e0) over the budget, per image, and keeps the best delta
seen over its iterations and restarts. The model is in eval mode and its weights get no gradient;
autocast is off (fp32 arithmetic), as clip_benchmark attacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from vfmaudit.attack.threat import project, steepest

if TYPE_CHECKING:
    import torch

LOSSES = ("cosine", "l2")


def embedding_loss(name: str) -> Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]:
    """Per-image loss to maximise: cosine = 1 - cos(e, e0); l2 = ||e - e0||^2 (FARE's)."""
    import torch

    if name == "cosine":
        return lambda e, e0: 1.0 - torch.nn.functional.cosine_similarity(e, e0, dim=1)
    if name == "l2":
        return lambda e, e0: ((e - e0) ** 2).sum(dim=1)
    raise ValueError(name)


def _loss_and_grad(fn, x01, delta, e0, loss):
    import torch

    delta = delta.detach().requires_grad_(True)
    with torch.enable_grad():
        values = loss(fn((x01 + delta).clamp(0.0, 1.0)), e0)
        grad, = torch.autograd.grad(values.sum(), delta)
    return values.detach(), grad.detach()


def _loss_only(fn, x01, delta, e0, loss):
    # the last point of a run is only scored, never stepped from: a forward without the backward (a
    # gradient there cost a tenth more per PGD-10 run than the loop a user would write)
    import torch

    with torch.no_grad():
        return loss(fn((x01 + delta).clamp(0.0, 1.0)), e0)


def _keep_best(best_loss, best_delta, values, delta):
    better = values > best_loss
    best_loss = best_loss.where(~better, values)
    best_delta = best_delta.where(~better.view(-1, *([1] * (delta.dim() - 1))), delta)
    return best_loss, best_delta


def _random_start(x01, norm: str, radius: float, generator) -> "torch.Tensor":
    import torch

    if norm == "linf":
        noise = (torch.rand(x01.shape, generator=generator, dtype=x01.dtype) * 2 - 1) * radius
    else:  # a uniform direction at a uniform fraction of the radius
        noise = torch.randn(x01.shape, generator=generator, dtype=x01.dtype)
        frac = torch.rand(x01.shape[0], generator=generator, dtype=x01.dtype)
        noise = steepest(noise, "l2") * (frac * radius).view(-1, 1, 1, 1)
    noise = noise.to(x01.device)
    return (x01 + noise).clamp(0.0, 1.0) - x01


def pgd(fn, x01, e0, loss, norm: str, radius: float, steps: int, step_size: float, restarts: int,
        generator, momentum: float = 0.9) -> tuple["torch.Tensor", "torch.Tensor"]:
    """PGD from a random start in the ball: velocity = momentum * velocity + unit(grad), renormalised,
    delta += step_size * velocity, projected onto the ball and the [0, 1] box. -> (best delta, its loss)."""
    import torch

    best_loss = torch.full((x01.shape[0],), -float("inf"), dtype=x01.dtype, device=x01.device)
    best_delta = torch.zeros_like(x01)
    if radius == 0:
        return best_delta, loss(fn(x01), e0).detach()
    for _ in range(restarts):
        delta = _random_start(x01, norm, radius, generator)
        velocity = torch.zeros_like(x01)
        for _ in range(steps):
            values, grad = _loss_and_grad(fn, x01, delta, e0, loss)
            best_loss, best_delta = _keep_best(best_loss, best_delta, values, delta)
            velocity = steepest(momentum * velocity + steepest(grad, norm), norm)
            delta = project(delta + step_size * velocity, norm, radius)
            delta = (x01 + delta).clamp(0.0, 1.0) - x01
        values = _loss_only(fn, x01, delta, e0, loss)
        best_loss, best_delta = _keep_best(best_loss, best_delta, values, delta)
    return best_delta, best_loss


def _checkpoints(steps: int) -> list[int]:
    # Croce & Hein (2020): p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({int(round(q * steps)) for q in p if 0 < q < 1})


def apgd(fn, x01, e0, loss, norm: str, radius: float, steps: int, restarts: int, generator,
         rho: float = 0.75, alpha: float = 0.75) -> tuple["torch.Tensor", "torch.Tensor"]:
    """APGD: step size 2 eps, halved at the checkpoints where fewer than rho of the steps since the last
    one raised the loss, or where neither the step size nor the best loss changed; each halving goes
    back to the best point. Momentum alpha = 0.75 between the projected step and the last move."""
    import torch

    n = x01.shape[0]
    shape = (-1, *([1] * (x01.dim() - 1)))
    best_loss = torch.full((n,), -float("inf"), dtype=x01.dtype, device=x01.device)
    best_delta = torch.zeros_like(x01)
    if radius == 0:
        return best_delta, loss(fn(x01), e0).detach()
    marks = set(_checkpoints(steps))

    def step(delta, grad, eta):
        moved = project(delta + eta.view(shape) * steepest(grad, norm), norm, radius)
        return (x01 + moved).clamp(0.0, 1.0) - x01

    for _ in range(restarts):
        delta = _random_start(x01, norm, radius, generator)
        eta = torch.full((n,), 2.0 * radius, dtype=x01.dtype, device=x01.device)
        values, grad = _loss_and_grad(fn, x01, delta, e0, loss)
        run_best, run_delta, run_grad = values.clone(), delta.clone(), grad.clone()
        previous = delta
        delta = step(delta, grad, eta)
        raised = torch.zeros(n, dtype=x01.dtype, device=x01.device)
        last_mark, eta_at_mark, best_at_mark = 0, eta.clone(), run_best.clone()
        for k in range(1, steps):
            values, grad = _loss_and_grad(fn, x01, delta, e0, loss)
            better = values > run_best
            raised += better.to(x01.dtype)
            run_best = run_best.where(~better, values)
            run_delta = run_delta.where(~better.view(shape), delta)
            run_grad = run_grad.where(~better.view(shape), grad)
            if k in marks:
                too_few = raised < rho * (k - last_mark)
                stuck = (eta == eta_at_mark) & (run_best == best_at_mark)
                halve = too_few | stuck
                eta = eta.where(~halve, eta / 2)
                delta = delta.where(~halve.view(shape), run_delta)  # back to the best point
                grad = grad.where(~halve.view(shape), run_grad)
                raised.zero_()
                last_mark, eta_at_mark, best_at_mark = k, eta.clone(), run_best.clone()
            z = step(delta, grad, eta)
            moved = delta + alpha * (z - delta) + (1 - alpha) * (delta - previous)
            previous = delta
            delta = (x01 + project(moved, norm, radius)).clamp(0.0, 1.0) - x01
        values = _loss_only(fn, x01, delta, e0, loss)
        better = values > run_best
        run_best = run_best.where(~better, values)
        run_delta = run_delta.where(~better.view(shape), delta)
        best_loss, best_delta = _keep_best(best_loss, best_delta, run_best, run_delta)
    return best_delta, best_loss
