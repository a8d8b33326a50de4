"""Loss kernels: the reference PyTorch InfoNCE loss and its fused Triton implementation.

Installed as ``hybrid_repro.kernels``.
"""
