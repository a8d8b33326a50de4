"""Run the Triton kernels through the interpreter when no CUDA device is present.

Triton decides between compiling and interpreting when a kernel is *defined*, reading
TRITON_INTERPRET then; so the variable is set here, at collection time, before any test module of
this directory imports ``hybrid_repro.kernels.infonce_triton``. It changes nothing for modules that
do not define Triton kernels, and with CUDA present the kernels compile as usual.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture
def interpreted_kernels():
    """Skip unless the kernels run here: on CUDA, or interpreted (they were defined after the line above)."""
    from hybrid_repro.kernels import infonce_triton

    if not (torch.cuda.is_available() or infonce_triton.INTERPRETED):
        pytest.skip("hybrid_repro.kernels.infonce_triton was imported before TRITON_INTERPRET=1 was set; "
                    "run tests/kernels in its own pytest process")
    return infonce_triton
