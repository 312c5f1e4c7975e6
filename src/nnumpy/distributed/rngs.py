"""Every rank's random streams: saved per rank in checkpoints, and made
independent across ranks (``decorrelate_rngs``)."""

import numpy as np

from ..backend import default_rng
from .comm import rank

__all__ = ["rng_states", "set_rng_states", "decorrelate_rngs"]


def _generators(model=None):
    """The generators whose state makes a run reproducible: nnumpy's default
    generator and every module's ``rng`` (e.g. Dropout), without duplicates."""
    found = [default_rng()]
    if model is not None:
        for _, module in model.named_modules():
            g = getattr(module, "rng", None)
            if isinstance(g, np.random.Generator) and all(g is not f for f in found):
                found.append(g)
    return found


def rng_states(model=None, extra=()):
    """This rank's RNG states (a JSON-able list of bit-generator states) of the
    default generator, the model's module generators and the ``extra`` ones."""
    return [g.bit_generator.state for g in _generators(model) + list(extra)]


def set_rng_states(states, model=None, extra=()):
    """Restore what ``rng_states`` returned, in the same order."""
    gens = _generators(model) + list(extra)
    if len(states) != len(gens):
        raise ValueError(f"set_rng_states: {len(states)} saved states for {len(gens)} generators")
    for g, state in zip(gens, states, strict=True):
        g.bit_generator.state = state


def decorrelate_rngs(model=None):
    """Give every rank > 0 its own random streams (Dropout masks, the default
    generator) by jumping each generator ``rank`` times ahead; rank 0 keeps
    its streams, so one process trains exactly as without MPI."""
    r = rank()
    if r:
        for g in _generators(model):
            bg = g.bit_generator
            if hasattr(bg, "jumped"):
                bg.state = bg.jumped(r).state
            else:  # e.g. SFC64: a fresh stream seeded from this one and the rank
                bg.state = type(bg)(np.random.SeedSequence([r, int(g.integers(2**63))])).state
