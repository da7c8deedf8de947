"""Files nirstream ships beside its code: trained weights (weights/) and the demo clip (demo/).

Read them through :mod:`nirstream.core.assets`, which knows where they are installed.
"""
