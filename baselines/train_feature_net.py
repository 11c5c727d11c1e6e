"""Train the Digits / MNIST feature network (``collapsebench.features.feature_cnn``) on the real train split.

    python baselines/train_feature_net.py digits                      # -> collapsebench/weights/digits_cnn.pt
    python baselines/train_feature_net.py mnist --data-dir DIR \\
        --out ~/.cache/collapsebench/weights/mnist_cnn.pt

The bundled ``digits_cnn.pt`` was made by the first command (CPU, one thread, seed 0); it prints the
test accuracy and the sha256 that goes into ``collapsebench.features.WEIGHTS``. Its penultimate layer
(128 features) is the embedding in which the Digits envs compute FD and PRDC.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from collapsebench.datasets import data_root, load_digits_images, load_mnist
from collapsebench.features import feature_cnn

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("dataset", choices=["digits", "mnist"])
parser.add_argument("--data-dir", default=None, help="data directory (MNIST); default $COLLAPSEBENCH_DATA")
parser.add_argument("--epochs", type=int, default=None, help="default: 60 (digits), 4 (mnist)")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", type=Path, default=None, help="default: collapsebench/weights/<dataset>_cnn.pt")
args = parser.parse_args()

torch.manual_seed(args.seed)
torch.set_num_threads(1)  # bit-reproducible on CPU
rng = np.random.default_rng(args.seed)

# 1. the real train/test split the envs use
data = load_digits_images() if args.dataset == "digits" else load_mnist(data_root(args.data_dir))
train_x = torch.from_numpy(data.train).float() / 127.5 - 1.0
train_y = torch.from_numpy(data.train_labels)
test_x = torch.from_numpy(data.test).float() / 127.5 - 1.0
test_y = torch.from_numpy(data.test_labels)
epochs = args.epochs or (60 if args.dataset == "digits" else 4)

# 2. a plain classifier, Adam, cross-entropy; one-pixel random shifts as the only augmentation
network = feature_cnn(channels=train_x.shape[1])
optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
for epoch in range(epochs):
    network.train()
    order = torch.from_numpy(rng.permutation(len(train_x)))
    for start in range(0, len(order), args.batch_size):
        index = order[start : start + args.batch_size]
        shift = tuple(int(s) for s in rng.integers(-1, 2, size=2))
        batch = torch.roll(train_x[index], shifts=shift, dims=(2, 3))
        loss = F.cross_entropy(network(batch), train_y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()
    with torch.no_grad():
        accuracy = (network(test_x).argmax(1) == test_y).float().mean().item()
    print(f"epoch {epoch + 1:3d}/{epochs}  loss {loss.item():.4f}  test accuracy {accuracy:.4f}")

# 3. save the weights (a plain state dict: loaded with torch.load(weights_only=True))
out = args.out or Path(__file__).resolve().parents[1] / "collapsebench" / "weights" / f"{args.dataset}_cnn.pt"
out.parent.mkdir(parents=True, exist_ok=True)
torch.save(network.state_dict(), out)
print(f"test accuracy {accuracy:.4f} on {len(test_x)} held-out images")
print(f"wrote {out}  sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")
