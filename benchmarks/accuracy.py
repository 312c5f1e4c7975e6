"""Figure 4 of ../shared/BENCHMARKS.md: test accuracy with the *fixed recipe*,
nnumpy beside PyTorch, same initial weights, same data order.

Fixed recipe: Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), batch 128, float32,
seed 0, MLP-F for 10 epochs, CNN-F for 5 epochs, on all 60,000 training
images; the test set is evaluated after every epoch. Wall seconds per epoch
are measured for each library (2 threads each).

    python benchmarks/accuracy.py --model mlp            # MLP-F, 10 epochs
    python benchmarks/accuracy.py --model cnn            # CNN-F, 5 epochs
    python benchmarks/accuracy.py --model mlp --epochs 1 --limit 5000   # quick check
    python benchmarks/accuracy.py --model mlp --seeds 0,1,2,3,4  # one comparison per seed, and the mean

The default recipe of ``nnumpy train`` (schedule, augmentation, weight decay)
is measured with the command itself; see benchmarks/README.md.
"""

import argparse
import json
import time

import numpy as np

import nnumpy
from nnumpy.data import load_fashion_mnist, normalize
from nnumpy.models import cnn_f, mlp_f


def torch_twin(model):
    """The PyTorch network with the same layers and weights as nnumpy's MLP-F / CNN-F."""
    import torch
    from torch import nn

    from nnumpy.interop import to_torch_state_dict

    layers = []
    for layer in model:
        name = type(layer).__name__
        if name == "Linear":
            layers.append(nn.Linear(layer.W.shape[1], layer.W.shape[0]))
        elif name == "Conv2d":
            layers.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.pads[0][0]))
        elif name == "BatchNorm2d":
            layers.append(nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum))
        elif name == "ReLU":
            layers.append(nn.ReLU())
        elif name == "MaxPool2d":
            layers.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif name == "Flatten":
            layers.append(nn.Flatten())
        elif name == "Dropout":
            layers.append(nn.Dropout(layer.p))
        elif name == "LogSoftMax":
            layers.append(nn.LogSoftmax(dim=1))
        else:
            raise ValueError(f"no PyTorch twin for {name}")
    net = nn.Sequential(*layers)
    net.load_state_dict({k: torch.as_tensor(v) for k, v in to_torch_state_dict(model).items()}, strict=False)
    return net


def run_nnumpy(model, x, y, xt, yt, epochs, seed):
    optimizer = nnumpy.Adam(model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    criterion = nnumpy.ClassNLLCriterion()
    model.skip_input_grad = True
    results = []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        model.train()
        start = time.perf_counter()
        for i in range(0, len(x), 128):
            batch = order[i : i + 128]
            optimizer.zero_grad()
            out = model.forward(x[batch])
            criterion.forward(out, y[batch])
            model.backward(x[batch], criterion.backward(out, y[batch]))
            optimizer.step()
        seconds = time.perf_counter() - start
        model.evaluate()
        predictions = np.concatenate([model.forward(xt[i : i + 1000]).argmax(1) for i in range(0, len(xt), 1000)])
        results.append({"epoch": epoch + 1, "test_accuracy": float((predictions == yt).mean()), "seconds": seconds})
        print("nnumpy ", results[-1], flush=True)
    return results


def run_torch(net, x, y, xt, yt, epochs, seed):
    import torch

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    criterion = torch.nn.NLLLoss()
    xs, ys, xts = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xt)
    results = []
    for epoch in range(epochs):
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(x)))
        net.train()
        start = time.perf_counter()
        for i in range(0, len(x), 128):
            batch = order[i : i + 128]
            optimizer.zero_grad()
            loss = criterion(net(xs[batch]), ys[batch])
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        net.eval()
        with torch.no_grad():
            predictions = torch.cat([net(xts[i : i + 1000]).argmax(1) for i in range(0, len(xt), 1000)]).numpy()
        results.append({"epoch": epoch + 1, "test_accuracy": float((predictions == yt).mean()), "seconds": seconds})
        print("pytorch", results[-1], flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--epochs", type=int, default=None, help="default: 10 for mlp, 5 for cnn")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", help="comma-separated seeds: one comparison each, then the mean difference")
    parser.add_argument("--json", help="write the results to this file (the first seed's)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (10 if args.model == "mlp" else 5)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]

    import torch

    torch.set_num_threads(args.threads)
    (x, y), (xt, yt) = load_fashion_mnist()
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    flatten = args.model == "mlp"
    x, xt = normalize(x, flatten=flatten), normalize(xt, flatten=flatten)
    y, yt = y.astype(np.int64), yt.astype(np.int64)

    rows = []
    for seed in seeds:
        nnumpy.manual_seed(seed)
        torch.manual_seed(seed)
        model = mlp_f() if args.model == "mlp" else cnn_f()
        net = torch_twin(model)
        with nnumpy.num_threads(args.threads):  # nnumpy's kernels and BLAS
            ours = run_nnumpy(model, x, y, xt, yt, epochs, seed)
            theirs = run_torch(net, x, y, xt, yt, epochs, seed)
        summary = {
            "model": args.model,
            "epochs": epochs,
            "seed": seed,
            "train_images": len(x),
            "nnumpy": ours,
            "pytorch": theirs,
            "difference_pp": 100 * (ours[-1]["test_accuracy"] - theirs[-1]["test_accuracy"]),
        }
        print(json.dumps({k: v for k, v in summary.items() if k not in ("nnumpy", "pytorch")}))
        line = (
            f"| {args.model.upper()}-F fixed recipe, {epochs} epochs, seed {seed} | "
            f"nnumpy {100 * ours[-1]['test_accuracy']:.2f} % ({np.mean([r['seconds'] for r in ours]):.1f} s/epoch) | "
            f"PyTorch {100 * theirs[-1]['test_accuracy']:.2f} % ({np.mean([r['seconds'] for r in theirs]):.1f} "
            f"s/epoch) | {summary['difference_pp']:+.2f} pp |"
        )
        rows.append((line, summary["difference_pp"]))
        if args.json and seed == seeds[0]:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2)
    print("\n".join(text for text, _ in rows))
    if len(rows) > 1:
        print(f"mean difference over seeds {args.seeds}: {np.mean([d for _, d in rows]):+.2f} pp")


if __name__ == "__main__":
    main()
