"""The values the colorizer's settings take, as types: the config checks them and the command
line offers them (``typing.get_args``), so the two cannot drift. No heavy imports: ``nirstream
--help`` reads this."""

from typing import Literal

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "fp16", "bf16", "int8", "auto"]
Backend = Literal["eager", "compile", "tensorrt"]
