"""The native int8 LSTM for generation (models/csrc/lstm_int8.c), built at install time.

Optional: where no C compiler is found the install goes on without it, and generation uses the
torch path (models/native_lstm.py says which runs). Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "models._lstm_int8",
            ["models/csrc/lstm_int8.c"],
            # -ffp-contract=off: no fused multiply-adds, so every kernel rounds the same way.
            # -fno-wrapv undoes Python's -fwrapv, which kept gcc from vectorizing the pointwise loops
            # (a batch-1 step of the 2x512 model took 72 us with it, 46 us without).
            extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-wrapv", "-fopenmp"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ]
)
