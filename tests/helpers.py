"""Shared test helpers: tolerances against PyTorch, seeded data."""

import numpy as np

# the keys of history.json / History.to_dict(), as issue 4 specifies them
HISTORY_KEYS = {
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "samples_per_s",
    "step_loss",
    "test_loss",
    "test_accuracy",
}


def tolerance(reference, dtype):
    """The suite's one tolerance rule: float64 strict (1e-10), float32 within
    ``1e-6 + 1e-5 * max|ref|``."""
    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    if np.dtype(dtype) == np.float64:
        return 1e-10 + 1e-10 * scale
    return 1e-6 + 1e-5 * scale


def assert_close(ours, reference, dtype=None, what=""):
    """Assert ``ours`` matches ``reference`` (NumPy array or torch tensor) under ``tolerance``."""
    if hasattr(reference, "detach"):
        reference = reference.detach().cpu().numpy()
    ours = np.asarray(ours)
    reference = np.asarray(reference)
    dtype = dtype or ours.dtype
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} != {reference.shape}"
    err = float(np.max(np.abs(ours.astype(np.float64) - reference.astype(np.float64)))) if ours.size else 0.0
    tol = tolerance(reference, dtype)
    assert err <= tol, f"{what}: max abs error {err:.3g} > tolerance {tol:.3g} ({np.dtype(dtype).name})"


def rng(seed=0):
    return np.random.default_rng(seed)


def short_sample_run(out, *options):
    """One epoch of ``nnumpy train --model mlp`` on the bundled sample into ``out``
    (extra command-line ``options`` appended); returns the loaded checkpoint."""
    import nnumpy
    from nnumpy.cli import main

    argv = ["train", "--model", "mlp", "--dataset", "sample", "--epochs", "1", "--val-size", "500"]
    code = main([*argv, *options, "--quiet", "--out", str(out)])
    assert code == 0
    return nnumpy.load_checkpoint(out / "checkpoint.npz")
