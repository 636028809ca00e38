"""Compiled kernels: pure functions over NumPy buffers with the GIL released.

``_imaging`` holds grey conversion, histograms, resampling, tile statistics and Sauvola;
``_geometry`` connected regions, projection profiles, the bilinear warp and the shears of a
rotation. Nothing here imports the rest of saoy; the wrappers in ``saoy.core.pages.imaging`` and
``saoy.core.pages.hashing`` validate inputs, allocate the outputs and call these.
"""
