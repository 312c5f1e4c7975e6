"""One rank fails while the other waits in a collective; the job must end.

    python fail.py hook|plain|exit
hook: nnumpy.distributed.init() installs the abort-on-exception hook;
plain: no init (run it as ``python -m mpi4py fail.py plain``);
exit: the error is turned into SystemExit(3) inside ``abort_on_error()``, as a CLI does.
"""

import sys

import numpy as np

import nnumpy.distributed as dist


def work():
    dist.barrier()
    if dist.rank() == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.allreduce_sum(np.ones(3))  # rank 0 blocks here forever unless the job is aborted


def main(mode):
    if mode == "hook":
        dist.init()
    if mode == "exit":
        with dist.abort_on_error():
            try:
                work()
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                raise SystemExit(3) from None
    else:
        work()


if __name__ == "__main__":
    main(sys.argv[1])
