"""Makes the embedded Fashion-MNIST sample from the original IDX files.

The sample is class-balanced and deterministic: for every class, the first
`--train_per_class` (resp. `--test_per_class`) examples in a seeded
permutation of the original train (resp. test) split. Rerunning this script
reproduces the arrays of keras_grow/data/fashion_mnist_sample.npz exactly.

    python scripts/make_fashion_mnist_sample.py \
        --source /usr/share/datasets/fashion-mnist
"""

import argparse
import os

import numpy as np

from keras_grow.data import sources

OUTPUT = os.path.join(
    os.path.dirname(__file__),
    "..",
    "keras_grow",
    "data",
    "fashion_mnist_sample.npz",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default=sources.DEBIAN_FASHION_MNIST_DIR)
    parser.add_argument("--output", default=OUTPUT)
    parser.add_argument("--train_per_class", type=int, default=600)
    parser.add_argument("--test_per_class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    arrays = sources.sample_from_idx(
        args.source, args.train_per_class, args.test_per_class, args.seed
    )
    np.savez_compressed(args.output, **arrays)
    print(
        f"wrote {args.output}: "
        + ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        + f", {os.path.getsize(args.output) / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
