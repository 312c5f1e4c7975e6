"""Print each rank's nnumpy kernel thread count after ``dist.init()``."""

import nnumpy as nn
import nnumpy.distributed as dist

dist.init()
print(f"rank {dist.rank()} threads {nn.get_num_threads()}", flush=True)
