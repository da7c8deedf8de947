"""nirstream.core: the model, the selective scan, losses, metrics, data and training.

Nothing here imports ``nirstream.stream``: the core is a library the real-time pipeline uses.
"""

__version__ = "0.1.0"
