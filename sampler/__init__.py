"""Random-walk sampling kernels (numba) and their validating wrappers.

Kernels are pure functions of arrays and a seed; nothing is compiled at
import time.
"""
