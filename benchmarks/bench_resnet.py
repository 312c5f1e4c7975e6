"""The ResNet of ``nnumpy train --model resnet`` trained by nnumpy and by PyTorch, side by side.

Both libraries train the same network (``nnumpy.models.resnet``: a 3x3 stem,
basic blocks 32-64-128, global average pooling, a linear classifier) with
the same recipe (``nnumpy.models.RECIPES["resnet"]``: AdamW, one-cycle
schedule, weight decay, label smoothing, flips and 2-pixel random crops),
from the same initial weights (PyTorch's are copied from nnumpy's), on the
same batches (one shuffle and one augmentation per step, drawn from
``(seed, epoch)`` and shared), on Fashion-MNIST's 60,000 training images
(``nnumpy train`` holds out 5,000 for validation; here all train, as the
test set is what is compared). Per seed it reports the wall time of each
epoch and the test accuracy after the last; then the mean over seeds and the
gap between the libraries (issue 16: within 0.5 pp after 5 epochs).

Run it on a quiet machine (it is the coordinator's measurement, not a test):

    python benchmarks/bench_resnet.py                 # 5 epochs, seeds 0 1 2, both libraries
    python benchmarks/bench_resnet.py --quick         # 1 epoch on 2,000 images, seed 0 (a smoke run)
    python benchmarks/bench_resnet.py --epochs 10 --only nnumpy --seeds 0   # the 'nnumpy train' budget
    python benchmarks/bench_resnet.py --out results_resnet.json
    python benchmarks/bench_resnet.py --profile       # nnumpy's step, layer by layer (no training)

Threads: nnumpy's default (all cores) and ``torch.set_num_threads(--threads)``
(default: the number of cores), so on the 2-core machine both use 2.
"""

import argparse
import collections
import json
import os
import sys
import time

import numpy as np

import nnumpy
from nnumpy.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, Augment, load_dataset, normalize
from nnumpy.models import RECIPES, make_schedule, resnet
from nnumpy.training import get_optimizer


def torch_resnet(torch, model):
    """The PyTorch twin of ``model`` (``nnumpy.models.resnet``), with its weights copied in."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, residual):
            super().__init__()
            body, shortcut = residual.body, residual.shortcut
            c1, c2 = body[0], body[3]
            self.body = nn.Sequential(
                nn.Conv2d(c1.in_channels, c1.out_channels, 3, c1.stride, 1, bias=False),
                nn.BatchNorm2d(c1.out_channels),
                nn.ReLU(),
                nn.Conv2d(c2.in_channels, c2.out_channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c2.out_channels),
            )
            self.shortcut = None
            if shortcut is not None:
                conv = shortcut[0]
                self.shortcut = nn.Sequential(
                    nn.Conv2d(conv.in_channels, conv.out_channels, 1, conv.stride, 0, bias=False),
                    nn.BatchNorm2d(conv.out_channels),
                )

        def forward(self, x):
            return torch.relu(self.body(x) + (x if self.shortcut is None else self.shortcut(x)))

    layers = []
    for m in model:
        name = type(m).__name__
        if name == "Conv2d":
            layers.append(nn.Conv2d(m.in_channels, m.out_channels, 3, 1, 1, bias=False))
        elif name == "BatchNorm2d":
            layers.append(nn.BatchNorm2d(m.num_features))
        elif name == "ReLU":
            layers.append(nn.ReLU())
        elif name == "Sequential":  # a basic block: Sequential(Residual(body, shortcut), ReLU())
            layers.append(Block(m[0]))
        elif name == "GlobalAvgPool2d":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif name == "Linear":
            layers.append(nn.Linear(m.W.shape[1], m.W.shape[0]))
        else:
            raise ValueError(f"no PyTorch twin for {m!r}")
    net = nn.Sequential(*layers)
    ours, theirs = model.parameters(), list(net.parameters())
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} nnumpy parameters vs {len(theirs)} PyTorch parameters")
    with torch.no_grad():
        for a, p in zip(ours, theirs, strict=True):
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"parameter shapes differ: {a.shape} vs {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return net


def batches(n, batch_size, seed, epoch, augment, x):
    """``(indices, augmented images)`` of one epoch: the shuffle and the augmentation both libraries see."""
    rng = np.random.default_rng((seed, epoch))
    order = rng.permutation(n)
    for lo in range(0, n, batch_size):
        idx = order[lo : lo + batch_size]
        yield idx, np.ascontiguousarray(augment(x[idx], rng) if augment else x[idx])


def accuracy_nnumpy(model, x, y, batch_size=500):
    model.evaluate()
    right = sum(int((model.forward(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
                for i in range(0, len(x), batch_size))  # fmt: skip
    model.train()
    return right / len(x)


def accuracy_torch(torch, net, x, y, batch_size=500):
    net.eval()
    with torch.no_grad():
        right = sum(int((net(torch.from_numpy(x[i : i + batch_size])).argmax(1).numpy() == y[i : i + batch_size]).sum())
                    for i in range(0, len(x), batch_size))  # fmt: skip
    net.train()
    return right / len(x)


def run_seed(seed, libraries, data, recipe, epochs, threads, log):
    (x_train, y_train), (x_test, y_test) = data
    fill = (0.0 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    augment = Augment(recipe.flip, recipe.crop_padding, fill=fill) if recipe.flip or recipe.crop_padding else None
    steps_per_epoch = -(-len(x_train) // recipe.batch_size)
    nnumpy.manual_seed(seed)
    model = resnet(rng=seed)
    result = {"seed": seed}
    if "torch" in libraries:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        net = torch_resnet(torch, model)
        t_opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        t_sched = torch.optim.lr_scheduler.OneCycleLR(
            t_opt, max_lr=recipe.lr, total_steps=steps_per_epoch * epochs, pct_start=recipe.pct_start,
            cycle_momentum=False,
        )  # fmt: skip
        t_loss = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        times = []
        for epoch in range(epochs):
            start = time.perf_counter()
            for idx, xb in batches(len(x_train), recipe.batch_size, seed, epoch, augment, x_train):
                t_opt.zero_grad()
                loss = t_loss(net(torch.from_numpy(xb)), torch.from_numpy(y_train[idx]))
                loss.backward()
                t_opt.step()
                t_sched.step()
            times.append(time.perf_counter() - start)
            log(f"  seed {seed} torch  epoch {epoch + 1}: {times[-1]:.1f} s, last loss {loss.item():.4f}")
        result["torch"] = {"epoch_s": times, "test_accuracy": accuracy_torch(torch, net, x_test, y_test)}
        log(f"  seed {seed} torch  test accuracy {result['torch']['test_accuracy']:.4f}")
    if "nnumpy" in libraries:
        optimizer = get_optimizer(recipe.optimizer, model, lr=recipe.lr, weight_decay=recipe.weight_decay)
        schedule = make_schedule(recipe, optimizer, steps_per_epoch, epochs)
        criterion = nnumpy.CrossEntropyCriterion(label_smoothing=recipe.label_smoothing)
        model.train()
        times = []
        for epoch in range(epochs):
            start = time.perf_counter()
            for idx, xb in batches(len(x_train), recipe.batch_size, seed, epoch, augment, x_train):
                model.zeroGradParameters()
                out = model.forward(xb)
                loss = criterion.forward(out, y_train[idx])
                model.backward(xb, criterion.backward(out, y_train[idx]))
                optimizer.step()
                schedule.step()
            times.append(time.perf_counter() - start)
            log(f"  seed {seed} nnumpy epoch {epoch + 1}: {times[-1]:.1f} s, last loss {float(loss):.4f}")
        result["nnumpy"] = {"epoch_s": times, "test_accuracy": accuracy_nnumpy(model, x_test, y_test)}
        log(f"  seed {seed} nnumpy test accuracy {result['nnumpy']['test_accuracy']:.4f}")
    return result


def profile_step(steps=10, warmup=3, log=print):
    """Time each leaf module's methods over ``steps`` batch-128 training steps of nnumpy's ResNet."""
    recipe = RECIPES["resnet"]
    model = resnet(rng=0)
    model.train()
    optimizer = get_optimizer(recipe.optimizer, model, lr=recipe.lr, weight_decay=recipe.weight_decay)
    criterion = nnumpy.CrossEntropyCriterion(label_smoothing=recipe.label_smoothing)
    x = np.random.default_rng(0).standard_normal((recipe.batch_size, 1, 28, 28)).astype(np.float32)
    y = np.arange(recipe.batch_size) % 10
    spent = collections.defaultdict(float)

    def timed(method, key):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = method(*args, **kwargs)
            spent[key] += time.perf_counter() - start
            return result

        return run

    for _, module in model.named_modules():
        if not module.children():
            kind = type(module).__name__ + (" 1x1" if getattr(module, "kernel_size", None) == (1, 1) else "")
            for name in ("updateOutput", "updateGradInput", "accGradParameters"):
                setattr(module, name, timed(getattr(module, name), (kind, name)))

    def step():
        model.zeroGradParameters()
        out = model.forward(x)
        criterion.forward(out, y)
        model.backward(x, criterion.backward(out, y))
        optimizer.step()

    for _ in range(warmup):
        step()
    spent.clear()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    total = (time.perf_counter() - start) / steps
    log(f"step {total * 1e3:.1f} ms (batch {recipe.batch_size}, {steps} steps after {warmup} warm-up steps)")
    for (kind, name), seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        log(f"  {kind:16s} {name:18s} {seconds / steps * 1e3:7.2f} ms")
    log(f"  inside the layers: {sum(spent.values()) / steps * 1e3:.1f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=["nnumpy", "torch"], help="train with one library only")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads (default: all cores)")
    parser.add_argument("--train-size", type=int, help="the first N training images (default: all 60,000)")
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default), sample, or a folder")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images, 1,000 test images, seed 0")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--profile", action="store_true", help="time nnumpy's step layer by layer, then stop")
    args = parser.parse_args(argv)
    if args.profile:
        profile_step()
        return 0
    if args.quick:
        args.epochs, args.seeds, args.train_size = 1, [0], 2000
    libraries = [args.only] if args.only else ["nnumpy", "torch"]
    recipe = RECIPES["resnet"]
    (train, test), source = load_dataset(args.dataset)
    x_train, y_train = normalize(train[0]).reshape(-1, 1, 28, 28), np.asarray(train[1], np.int64)
    x_test, y_test = normalize(test[0]).reshape(-1, 1, 28, 28), np.asarray(test[1], np.int64)
    if args.train_size:
        x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    if args.quick:
        x_test, y_test = x_test[:1000], y_test[:1000]

    def log(text):
        print(text, flush=True)

    log(f"data: {source}, {len(x_train)} training and {len(x_test)} test images; recipe {recipe}")
    note = "  [--quick: a smoke run, its times are noisy]" if args.quick else ""
    log(f"epochs {args.epochs}, seeds {args.seeds}, libraries {libraries}, torch threads {args.threads}, "
        f"load average {os.getloadavg()[0]:.1f}{note}")  # fmt: skip
    results = [run_seed(s, libraries, ((x_train, y_train), (x_test, y_test)), recipe, args.epochs, args.threads, log)
               for s in args.seeds]  # fmt: skip
    summary = {}
    for lib in libraries:
        accs = [r[lib]["test_accuracy"] for r in results]
        epoch_s = [t for r in results for t in r[lib]["epoch_s"]]
        summary[lib] = {"mean_test_accuracy": float(np.mean(accs)), "mean_epoch_s": float(np.mean(epoch_s)),
                        "accuracies": accs}  # fmt: skip
        log(f"{lib:7s} mean test accuracy {np.mean(accs):.4f} over seeds {args.seeds} (each {accs}); "
            f"mean epoch {np.mean(epoch_s):.1f} s")  # fmt: skip
    if len(libraries) == 2:
        gap = 100 * (summary["nnumpy"]["mean_test_accuracy"] - summary["torch"]["mean_test_accuracy"])
        summary["gap_pp"] = gap
        log(f"nnumpy - torch: {gap:+.2f} pp (target: within 0.5 pp); epoch time ratio "
            f"{summary['nnumpy']['mean_epoch_s'] / summary['torch']['mean_epoch_s']:.2f}x")  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "recipe": recipe.to_dict(), "seeds": results, "summary": summary}, f,
                      indent=1)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
