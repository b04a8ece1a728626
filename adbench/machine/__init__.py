"""The machine a run computes on: its devices, the kernels torch uses, other processes' load, and timing."""
