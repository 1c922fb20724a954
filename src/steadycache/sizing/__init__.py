"""Cache sizing: trace readers and miss-ratio curves.

Kept import-light on purpose: numpy and zstandard are imported only by the functions that
need them (``pip install 'steadycache[sizing]'``), so ``import steadycache.sizing`` always works.
"""
