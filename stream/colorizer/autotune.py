"""Choose the tile batch and the half-precision type by measuring them on the device that runs them.

- Tile batch (``engine.tile_batch: auto``): the largest batch that fits in GPU memory, trying
  1, 2, 4, ... up to the number of tiles one frame has (a larger batch has nothing to add).
- Half type (``engine.precision: auto``): fp16 has more mantissa, bf16 more range. A model
  whose activations overflow fp16 gives inf/NaN there, and bf16's 8-bit mantissa can cost
  visible accuracy. Each candidate runs on a sample frame against fp32: of fp32 and the
  candidates whose 8-bit output stays at least :data:`MIN_PSNR_DB` from fp32, the fastest
  wins. On CUDA the candidates are fp16 and bf16; on a CPU with bf16 instructions (AVX-512
  bf16, AMX) bf16, which oneDNN runs natively; on other CPUs none, so fp32 stays.

Both run once per colorizer, on the first frame size it sees, before any real frame.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.metrics import psnr

MIN_PSNR_DB = 45.0
"""The fp16-against-fp32 bar the project sets for real frames (8-bit output)."""


MIN_SPEEDUP = 1.1
"""How much faster than fp32 a half type must run to be chosen."""


def largest_fitting_batch(run: Callable[[int], object], most: int) -> int:
    """The largest ``n`` in 1, 2, 4, ... and ``most`` for which ``run(n)`` does not run out of memory."""
    candidates = sorted({min(2**k, most) for k in range(max(most, 1).bit_length() + 1)})
    best = 0
    for n in candidates:
        try:
            run(n)
        except torch.OutOfMemoryError:
            break
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        best = n
    if best == 0:
        raise ConfigError("one tile does not fit in GPU memory: set a smaller engine.tile")
    return best


@dataclass(frozen=True)
class PrecisionTrial:
    """One half type on the sample frame: its 8-bit output's PSNR against fp32 and its time."""

    precision: str
    psnr_db: float
    ms: float

    @property
    def accurate(self) -> bool:
        return self.psnr_db >= MIN_PSNR_DB  # False for NaN output


def choose_half_precision(run: Callable[[str], Tensor], candidates: tuple[str, ...], repeats: int = 3) -> tuple[str, list[PrecisionTrial]]:
    """``(chosen precision, trials)``: ``run(p)`` colorizes the sample frame under precision ``p``.

    ``run`` returns ``B×3×H×W`` in [0, 1]; each candidate is timed as the best of ``repeats``
    runs after one warm-up run.
    """
    reference = run("fp32").float()
    trials = [PrecisionTrial("fp32", float("inf"), _best_ms(run, "fp32", repeats))]
    for precision in candidates:
        score = float(psnr(run(precision).float(), reference).mean())
        trials.append(PrecisionTrial(precision, score, _best_ms(run, precision, repeats)))
    return pick_precision(trials), trials


def pick_precision(trials: list[PrecisionTrial]) -> str:
    """The fastest of the accurate trials (fp32's own is always accurate), where a half type must
    beat fp32 by :data:`MIN_SPEEDUP`: a function of the measurements alone, and one that does not
    flip between runs when the two are about as fast."""
    fp32 = next(t for t in trials if t.precision == "fp32")
    faster = [t for t in trials if t.accurate and (t is fp32 or fp32.ms >= MIN_SPEEDUP * t.ms)]
    return min(faster, key=lambda t: t.ms).precision


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX-512 bf16 or AMX), where bf16 can beat fp32."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _best_ms(run: Callable[[str], Tensor], precision: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(precision)
        best = min(best, time.perf_counter() - start)
    return best * 1e3
