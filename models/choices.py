"""The names a user may choose for devices and precisions, spelled once.

Free of torch on purpose: the CLI builds its flags and help from these, and importing torch for
every command (even `rnnbot --help`) would cost seconds.
"""

TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
GENERATION_PRECISIONS = ("auto", "fp32", "bf16", "int8")
DEVICE_HELP = "auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N"
