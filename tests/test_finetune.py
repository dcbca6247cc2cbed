"""vfmaudit finetune: the objective improves, weights reproduce the model everywhere, resume, bad input."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from cli_runner import run_cli
from helpers import noisy_photos
from vfmaudit import perturb
from vfmaudit.files import file_sha256

MODEL = "timm:test_resnet"
TINY = ["-m", MODEL, "-p", "jpeg,gaussian_blur", "--batch-size", "3", "--steps", "8", "--lr", "1e-4",
        "--train", "last:2", "--eval-perturbations", "jpeg,brightness", "-q"]


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory, photo_batch):
    return noisy_photos(tmp_path_factory.mktemp("ft_imgs"), photo_batch, 8, spread=25, name="p{i}.png")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, photos_dir):
    out = tmp_path_factory.mktemp("ft") / "out"
    policy = out.parent / "policy.toml"
    policy.write_text('model = "unused.onnx"\n[[check]]\nmetric = "parity.cosine.min"\nmin = 0.9999\n')
    res = run_cli("finetune", photos_dir, *TINY, "--out", out, "--export", "onnx", "--gate", policy)
    assert res.returncode == 0, res.stderr
    return out


def objective(module, images, lam=1.0, reference=None):
    """The training loss on a fixed set of edits: -cos(f'(x), f'(P(x))) - lam cos(f(x), f'(x))."""
    from vfmaudit.models import build_model

    built = build_model(MODEL, seed=0)
    x = np.stack([built.preprocess.prepare(i) for i in images])
    xp = np.concatenate([perturb.apply(x[:4], "jpeg", 20), perturb.apply(x[4:], "gaussian_blur", 2.5)])
    with torch.inference_mode():
        e = module(torch.from_numpy(built.preprocess.normalize(x)))
        ep = module(torch.from_numpy(built.preprocess.normalize(xp)))
        ref = reference if reference is not None else e
        return float(-(e * ep).sum(-1).mean() - lam * (ref * e).sum(-1).mean()), e


def test_training_lowers_the_objective_and_weights_reproduce_the_model(tuned, photos_dir):
    from vfmaudit.models import build_model

    report = json.loads((tuned / "report.json").read_text())
    assert report["random_weights"] and report["training"]["steps"] == 8
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photos_dir.glob("*.png"))]
    before = build_model(MODEL, seed=0).module
    after = build_model(MODEL, pretrained=str(tuned / "weights.safetensors"), seed=0).module
    loss_before, ref = objective(before, images)
    loss_after, _ = objective(after, images, reference=ref)
    assert loss_after < loss_before, (loss_before, loss_after)
    rows = (tuned / "train_log.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,loss,robustness,utility,lr,grad_norm" and len(rows) == 9
    assert report["weights_file"]["sha256"] == file_sha256(tuned / "weights.safetensors")


def test_weights_reproduce_the_fine_tuned_embeddings_in_audit_and_export(tuned, tmp_path):
    report = json.loads((tuned / "report.json").read_text())
    held = report["held_out"]["ids"]
    res = run_cli("audit", *held, "-m", MODEL, "--pretrained", tuned / "weights.safetensors",
                  "-p", "jpeg,brightness", "--levels", "3", "--out", tmp_path / "a", "-q")
    assert res.returncode == 0, res.stderr
    audit = json.loads((tmp_path / "a" / "report.json").read_text())
    for fam in ("jpeg", "brightness"):
        after = report["held_out"]["families"][fam]
        assert audit["families"][fam]["divergence_radius"]["mean"] == pytest.approx(
            after["divergence_radius"]["after"], abs=1e-4)
        assert audit["families"][fam]["cosine"]["mean"] == pytest.approx(after["cosine"]["after"], abs=1e-4)
    ex = report["export"]
    assert ex["passed"] and ex["parity"]["min_cosine"] >= 0.9999
    gate = json.loads((tuned / "gate" / "gate.json").read_text())  # the policy's model replaced by the export
    assert report["gate"]["passed"] and gate["policy"]["model"] == str(tuned / "model.onnx")
    assert ex["weights_sha256"] == file_sha256(tuned / "weights.safetensors")
    from vfmaudit.artefact import read_onnx_info

    info = read_onnx_info(tuned / "model.onnx")
    assert info.weights["kind"] == "file" and info.weights["sha256"] == ex["weights_sha256"]
    page = (tuned / "report.html").read_text()
    assert "before (A) and after (B)" in page and "<svg" in page and "delta-" in page


def test_resume_continues_from_the_checkpoint_and_ends_where_an_uninterrupted_run_ends(photos_dir, tmp_path):
    from vfmaudit import FinetuneConfig, run_finetune
    from vfmaudit.finetune.runner import run_finetune as measure

    base = dict(inputs=[str(photos_dir)], model=MODEL, perturbations="jpeg", batch_size=2, steps=6, lr=3e-4,
                train="last:1", eval_perturbations="jpeg", eval_levels=2)

    def stop_at_4(step, total, row):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure(FinetuneConfig(**base, out=str(tmp_path / "r")), progress=stop_at_4)
    assert (tmp_path / "r" / "checkpoint.pt").exists() and not (tmp_path / "r" / "weights.safetensors").exists()
    refused = run_cli("finetune", photos_dir, "-m", MODEL, "-p", "jpeg", "--batch-size", "2", "--steps", "6", "--out",
                      tmp_path / "r")
    assert refused.returncode == 2 and "--resume" in refused.stderr
    other = run_cli("finetune", photos_dir, "-m", MODEL, "-p", "jpeg", "--batch-size", "2", "--steps", "7", "--lr", "3e-4",
                    "--train", "last:1", "--out", tmp_path / "r", "--resume")
    assert other.returncode == 2 and "cannot resume" in other.stderr and "steps" in other.stderr
    resumed = run_finetune(FinetuneConfig(**base, out=str(tmp_path / "r"), resume=True))
    assert resumed.report["training"]["resumed_from_step"] == 3  # the checkpoint of the last full epoch
    run_finetune(FinetuneConfig(**base, out=str(tmp_path / "s")))
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "r" / "weights.safetensors"), load_file(tmp_path / "s" / "weights.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    rows = (tmp_path / "r" / "train_log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5, 6]


def test_each_step_is_taken_with_the_gradient_clipped_to_clip_grad(photos_dir, tmp_path):
    """A global optimiser pre-step hook sees the gradients the step is taken with: their total norm is
    clip_grad whenever the logged (unclipped) norm is above it, and the logged one is."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from vfmaudit import FinetuneConfig, run_finetune

    seen = []

    def spy(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    clip = 1e-4
    handle = register_optimizer_step_pre_hook(spy)
    try:
        run_finetune(FinetuneConfig(inputs=[str(photos_dir)], perturbations="jpeg", batch_size=2, steps=3,
                                    train="last:1", clip_grad=clip, eval_perturbations="jpeg", eval_levels=2,
                                    out=str(tmp_path / "o")))
    finally:
        handle.remove()
    logged = [float(r.split(",")[-1]) for r in (tmp_path / "o" / "train_log.csv").read_text().splitlines()[1:]]
    assert len(seen) == len(logged) == 3
    assert all(n > 10 * clip for n in logged), logged  # the clip binds at every step
    assert seen == pytest.approx([clip] * 3, rel=1e-3), (seen, logged)  # clip / (norm + 1e-6)


@pytest.mark.parametrize("args,needle", [
    (["-p", "fog"], "unknown perturbation family 'fog'"),
    (["-p", "jpeg:5:50"], "outside the domain"),
    (["--batch-size", "64"], "fewer than one batch of 64; pass more images or lower --batch-size"),
    (["--train", "some"], "--train must be last:N"),
    (["--export", "tflite"], "--export must be onnx"),
    (["--clip-grad", "0"], "clip-grad must be > 0"),
])
def test_bad_input_is_one_line_and_exit_2(photos_dir, tmp_path, args, needle):
    res = run_cli("finetune", photos_dir, "--steps", "1", *args, "--out", tmp_path / "o")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert res.stderr.count("\n") == 1  # one line, not a blank line before it
    assert not (tmp_path / "o" / "weights.safetensors").exists()


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("finetune", tmp_path / "empty", "--out", tmp_path / "o")
    assert res.returncode == 2 and "holds no files" in res.stderr


def test_set_up_training_and_evaluation_are_stage_lines_off_a_terminal(photos_dir, tmp_path, monkeypatch):
    """In a log every stage is one plain line (training every tenth of its steps); -q silences them all."""
    from vfmaudit.cli.common import Stages

    monkeypatch.setattr(Stages, "DELAY_S", 0.0)
    args = ["finetune", photos_dir, "-m", MODEL, "-p", "jpeg", "--batch-size", "3", "--steps", "2",
            "--eval-perturbations", "jpeg,brightness"]
    res = run_cli(*args, "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    for needle in (f"building {MODEL}", "training and", "embedding", "training (2 steps): 1/2",
                   "training (2 steps): 2/2", "saving weights.safetensors",
                   "evaluating before and after on", "(families): 1/2", "writing report.json and report.html"):
        assert any(needle in ln for ln in lines), (needle, res.stderr)
    assert "\x1b[" not in res.stderr and "\r" not in res.stderr
    quiet = run_cli(*args, "--out", tmp_path / "q", "-q")
    assert quiet.returncode == 0 and quiet.stderr.strip() == ""


def test_finetune_help_says_it_takes_a_torch_model():
    res = run_cli("finetune", "--help")
    assert "an exported .onnx or .engine cannot be trained" in " ".join(res.stdout.split())


def test_a_failed_gate_after_fine_tuning_is_exit_1_and_recorded(photos_dir, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(f'model = "unused"\nimages = ["{photos_dir}"]\n\n[audit]\nperturbations = "jpeg"\nlevels = 2\n\n'
                      '[[check]]\nmetric = "audit.jpeg.divergence_radius.mean"\nmax = 1e-9\n')  # JPEG moves every image
    res = run_cli("finetune", photos_dir, "-m", MODEL, "-p", "jpeg", "--batch-size", "3", "--steps", "1",
                  "--eval-perturbations", "jpeg", "--gate", policy, "--out", tmp_path / "o", "-q")
    assert res.returncode == 1, res.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["gate"]["passed"] is False and report["gate"]["failures"] == 1
    assert (tmp_path / "o" / "weights.safetensors").is_file()  # the work is kept


def test_an_impossible_gate_policy_is_one_line_before_training(photos_dir, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('model = "unused"\n[[check]]\nmetric = "audit.jpeg.cosine.mean"\nmin = 1.5\n')
    res = run_cli("finetune", photos_dir, "-m", MODEL, "--steps", "1", "--gate", policy, "--out", tmp_path / "o")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no value can pass" in res.stderr, res.stderr
    assert not (tmp_path / "o" / "weights.safetensors").exists()


def test_adversarial_training_lowers_the_held_out_worst_case_and_keeps_utility(photos_dir, tmp_path):
    """--adversarial linf:4: PGD examples per batch with FARE's loss. The held-out worst case at 4/255 is
    lower after (as the report says, and as `vfmaudit attack` finds independently on the saved weights),
    and the clean embedding stays >= 0.95 cosine to the original's."""
    from pathlib import Path

    from vfmaudit import AttackConfig, FinetuneConfig, run_attack

    out = tmp_path / "adv"
    res = run_cli("finetune", photos_dir, "-m", MODEL, "--batch-size", "2", "--steps", "8", "--lr", "1e-3", "--train",
                  "all", "--eval-perturbations", "jpeg", "--adversarial", "linf:4",
                  "--attack-steps", "5", "--out", out)
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    held = report["held_out"]
    worst = held["worst_case"]
    assert (worst["norm"], worst["eps"], worst["steps"]) == ("linf", 4.0, 5) and report["config"]["adversarial"] == "linf:4"
    before, after = 1 - worst["cosine_mean"]["before"], 1 - worst["cosine_mean"]["after"]
    assert after < 0.8 * before, (before, after)  # measured: about half the drift after 8 steps
    assert held["utility_cosine"]["min"] >= 0.95
    assert "Adversarially trained at linf 4/255" in (out / "report.html").read_text()
    # the console: jpeg was only evaluated (not trained), and the worst case announced is printed
    assert report["trained_families"] == [] and not held["families"]["jpeg"]["trained"]
    table = " ".join(res.stdout.split())
    assert re.search(r"│ jpeg │ │ [\d.]+ │", table) and "│ trained │" not in table, res.stdout
    assert "Held-out worst case: trained adversarially at linf 4/255 (PGD-5" in table, res.stdout
    for stat, label in (("cosine_mean", "mean"), ("cosine_worst", "worst")):
        assert f"│ {label} │ {worst[stat]['before']:.4f} │ {worst[stat]['after']:.4f} │" in table, res.stdout
    images = [str(photos_dir / Path(i).name) for i in held["ids"]]
    attacks = [run_attack(AttackConfig(images=images, model=MODEL, pretrained=w, eps=(4,), steps=10, seed=1))
               for w in (None, str(out / "weights.safetensors"))]
    assert 1 - attacks[1].budgets[0]["cosine"]["mean"] < 1 - attacks[0].budgets[0]["cosine"]["mean"]
    # the adversarial budget is part of what a resume must match; a malformed one is one line
    again = run_cli("finetune", photos_dir, "-m", MODEL, "--batch-size", "2", "--steps", "8", "--lr", "1e-3", "--train",
                    "all", "--adversarial", "linf:2", "--out", out, "--resume")
    assert again.returncode == 2 and "adversarial" in again.stderr
    bad = run_cli("finetune", photos_dir, "-m", MODEL, "--adversarial", "linf", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "adversarial must be linf:EPS" in bad.stderr and not (tmp_path / "bad").exists()
    assert FinetuneConfig(adversarial="l2:0.5").adversarial_budget() == ("l2", 0.5)
