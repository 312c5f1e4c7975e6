"""Light, vectorised image augmentation for training batches.

``Augment(flip=True, crop_padding=2)`` is a batch transform ``(x, rng) -> x``
that ``fit(..., augment=...)`` applies to every training batch (never to
validation or test data). ``fit`` draws ``rng`` from ``(seed, epoch, batch)``,
so augmented batches are reproducible and a resumed run sees the same ones.

Example:
    >>> import numpy as np
    >>> aug = Augment(flip=True, crop_padding=2, image_shape=(1, 28, 28))
    >>> aug(np.zeros((4, 784), np.float32), np.random.default_rng(0)).shape
    (4, 784)
"""

import numpy as np

__all__ = ["random_flip", "random_crop", "Augment"]


def random_flip(x, rng, p=0.5):
    """Mirror each image of ``(N, ..., W)`` left-right with probability ``p``."""
    flip = rng.random(x.shape[0]) < p
    out = x.copy()
    out[flip] = x[flip, ..., ::-1]
    return out


def random_crop(x, rng, padding=2, fill=0.0):
    """Pad ``(N, C, H, W)`` by ``padding`` on every side with ``fill`` and cut
    an ``H x W`` window at a random offset per image (a random shift of up to
    ``padding`` pixels)."""
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * padding, w + 2 * padding), fill, dtype=x.dtype)
    padded[:, :, padding : padding + h, padding : padding + w] = x
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    out = np.empty_like(x)
    # one slice copy per distinct offset: (2p+1)^2 groups, no per-pixel gather
    for oy in range(2 * padding + 1):
        for ox in range(2 * padding + 1):
            idx = np.flatnonzero((dy == oy) & (dx == ox))
            if idx.size:
                out[idx] = padded[idx, :, oy : oy + h, ox : ox + w]
    return out


class Augment:
    """Random horizontal flip and random crop with padding, on whole batches.

    Args:
        flip: mirror half of the images left-right.
        crop_padding: shift by up to this many pixels (0: no crop).
        fill: value of the padding (use the normalised value of a black pixel).
        image_shape: ``(C, H, W)`` of one image when batches arrive flattened
            (``(N, C*H*W)`` for an MLP); None when they are ``(N, C, H, W)``.
    """

    def __init__(self, flip=True, crop_padding=2, fill=0.0, image_shape=None):
        self.flip = bool(flip)
        self.crop_padding = int(crop_padding)
        self.fill = float(fill)
        self.image_shape = None if image_shape is None else tuple(image_shape)

    def __call__(self, x, rng):
        if not hasattr(x, "shape"):
            raise TypeError(f"{self!r}: expected one batch of images, got a {type(x).__name__} (a model of several "
                            "inputs: augment them in a function of your own, (xb, rng) -> xb)")  # fmt: skip
        shape = x.shape
        images = x.reshape((shape[0], *self.image_shape)) if self.image_shape else x
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ValueError(f"{self!r}: expected images (N, C, H, W) or image_shape for flat input, got {shape}")
        if self.crop_padding:
            images = random_crop(images, rng, self.crop_padding, self.fill)
        if self.flip:
            images = random_flip(images, rng)
        return images.reshape(shape)

    def __repr__(self):
        return f"Augment(flip={self.flip}, crop_padding={self.crop_padding}, fill={self.fill:.4g})"
