# cython: language_level=3
"""Page imaging kernels: grey and histogram, resampling, focus and saturation tiles, Sauvola.

Callers (saoy.core.pages.imaging) validate shapes, dtypes and contiguity and allocate every
output and scratch buffer; nothing here allocates inside a loop, and every loop runs without the
GIL.
"""

from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef inline void _count(const uint8_t* src, Py_ssize_t w, uint32_t* hist) noexcept nogil:
    """Add the ``w`` values at ``src`` to the four interleaved histograms at ``hist`` (4 x 256):
    consecutive pixels go to different counters, so increments do not wait on each other."""
    cdef Py_ssize_t x = 0
    cdef uint32_t* h0 = hist
    cdef uint32_t* h1 = hist + 256
    cdef uint32_t* h2 = hist + 512
    cdef uint32_t* h3 = hist + 768
    while x + 4 <= w:
        h0[src[x]] += 1
        h1[src[x + 1]] += 1
        h2[src[x + 2]] += 1
        h3[src[x + 3]] += 1
        x = x + 4
    while x < w:
        h0[src[x]] += 1
        x = x + 1


def rgb_to_gray_hist(
    const uint8_t[:, :, ::1] rgb, uint8_t[:, ::1] gray, uint32_t[:, :, ::1] parts
):
    """Write ITU-R BT.601 luma of ``rgb`` into ``gray`` and add its histogram to ``parts``.

    Integer arithmetic (weights 299/587/114, rounded) so the result is exact and repeatable.
    ``parts`` is (n, 4, 256): rows are split into n bands counted in parallel, each into its own
    four interleaved sub-histograms (see ``_count``); the caller sums them. 32-bit counters
    hold any page the wrappers accept (at most 2**28 pixels).
    """
    cdef Py_ssize_t h = rgb.shape[0], w = rgb.shape[1], n = parts.shape[0]
    cdef Py_ssize_t band, y, x, y0, y1
    cdef int v
    cdef float thousandth = 0.001
    cdef const uint8_t* src
    cdef uint8_t* dst
    with nogil:
        for band in prange(n, schedule="static"):
            y0 = band * h // n
            y1 = (band + 1) * h // n
            for y in range(y0, y1):
                src = &rgb[y, 0, 0]
                dst = &gray[y, 0]
                for x in range(w):
                    # v // 1000 as a float product, which vectorizes: v < 2**18 is exact in a
                    # float, the product's error (< 4e-5) is far below the 1/1000 gap to the
                    # next integer, and 0.001f > 0.001 so exact multiples do not fall short.
                    v = 299 * src[3 * x] + 587 * src[3 * x + 1] + 114 * src[3 * x + 2] + 500
                    dst[x] = <uint8_t>(<float>v * thousandth)
                _count(dst, w, &parts[band, 0, 0])


def gray_hist(const uint8_t[:, ::1] gray, uint32_t[:, :, ::1] parts):
    """Add the histogram of ``gray`` to ``parts`` (n, 4, 256), as in ``rgb_to_gray_hist``."""
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1], n = parts.shape[0]
    cdef Py_ssize_t band, y, y0, y1
    with nogil:
        for band in prange(n, schedule="static"):
            y0 = band * h // n
            y1 = (band + 1) * h // n
            for y in range(y0, y1):
                _count(&gray[y, 0], w, &parts[band, 0, 0])


def box_downscale(const uint8_t[:, ::1] src, uint8_t[:, ::1] dst, int f, uint16_t[:, ::1] acc):
    """``dst[i, j]`` = the mean, rounded half up, of the f x f block of ``src`` at (f i, f j).

    ``dst`` is (h // f, w // f); the incomplete blocks at the bottom and right are dropped.
    ``acc`` is (n, w) scratch: output rows are split into n bands, each summing its f source
    rows column by column into its own ``acc`` row (16 bits: f <= 16, so the column loop
    vectorizes), then f columns at a time. The division is a multiply and shift, exact for
    every sum that can occur.
    """
    cdef Py_ssize_t oh = dst.shape[0], ow = dst.shape[1], n = acc.shape[0], wf = ow * f
    cdef Py_ssize_t band, i, i0, i1, j, k, dy, x
    cdef uint64_t magic = (<uint64_t>1 << 32) // (f * f) + 1
    cdef uint32_t s, half = (f * f) // 2
    cdef const uint8_t* row
    cdef uint16_t* a
    with nogil:
        for band in prange(n, schedule="static"):
            i0 = band * oh // n
            i1 = (band + 1) * oh // n
            a = &acc[band, 0]
            for i in range(i0, i1):
                row = &src[i * f, 0]
                for x in range(wf):
                    a[x] = row[x]
                for dy in range(1, f):
                    row = &src[i * f + dy, 0]
                    for x in range(wf):
                        a[x] = <uint16_t>(a[x] + row[x])
                for j in range(ow):
                    s = half
                    for k in range(f):
                        s = s + a[j * f + k]
                    dst[i, j] = <uint8_t>((s * magic) >> 32)


def lower_edges(
    const uint8_t[:, ::1] gray, int level, int32_t[::1] xs, int32_t[::1] ys, int x_offset
):
    """Collect the pixels with grey <= ``level`` whose lower neighbour is > ``level`` (the
    bottoms of ink strokes) as (x + ``x_offset``, y); returns how many. ``xs``/``ys`` hold
    at least (h - 1) * w entries.

    Rows are scanned in blocks of 32 pixels: a block is first tested whole (a loop that
    vectorizes), and only a block holding an edge is walked pixel by pixel."""
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1], y, x, x0, k, n = 0
    cdef const uint8_t* row
    cdef const uint8_t* below
    cdef uint8_t lv = <uint8_t>level, hit
    if level < 0 or level >= 255:
        return 0  # nothing is > 255, and nothing is <= a negative level
    with nogil:
        for y in range(h - 1):
            row = &gray[y, 0]
            below = &gray[y + 1, 0]
            x0 = 0
            while x0 < w:
                k = 32 if x0 + 32 <= w else w - x0
                hit = 0
                for x in range(x0, x0 + k):
                    hit = hit | ((row[x] <= lv) & (below[x] > lv))
                if hit:
                    for x in range(x0, x0 + k):
                        if row[x] <= lv and below[x] > lv:
                            xs[n] = <int32_t>(x + x_offset)
                            ys[n] = <int32_t>y
                            n = n + 1
                x0 = x0 + k
    return n


def area_resize(
    const uint8_t[:, ::1] src,
    double[:, ::1] dst,
    double[:, ::1] tmp,
    const Py_ssize_t[::1] x0, const Py_ssize_t[::1] x1, const double[:, ::1] xw,
    const Py_ssize_t[::1] y0, const Py_ssize_t[::1] y1, const double[:, ::1] yw,
):
    """Area-average ``src`` into ``dst`` (h', w'), separably: rows first into ``tmp`` (h, w').

    For output column j, source columns x0[j] .. x1[j]-1 contribute with weights xw[j, k]
    (k counted from x0[j]); the same for rows. The weights of one output sum to 1.
    """
    cdef Py_ssize_t h = src.shape[0], oh = dst.shape[0], ow = dst.shape[1], y, i, j, k
    cdef double acc
    with nogil:
        for y in prange(h, schedule="static"):
            for j in range(ow):
                acc = 0.0
                for k in range(x0[j], x1[j]):
                    acc = acc + xw[j, k - x0[j]] * src[y, k]
                tmp[y, j] = acc
        for i in prange(oh, schedule="static"):
            for j in range(ow):
                acc = 0.0
                for k in range(y0[i], y1[i]):
                    acc = acc + yw[i, k - y0[i]] * tmp[k, j]
                dst[i, j] = acc


def laplacian_tiles(
    const uint8_t[:, ::1] gray,
    const Py_ssize_t[::1] ty, const Py_ssize_t[::1] tx, int tile,
    double[::1] lap_var, double[::1] gray_var,
):
    """For each tile (top-left ``ty[t]``, ``tx[t]``, ``tile`` square, inside the image with a
    one-pixel margin), the variance of the 4-neighbour Laplacian and of the grey levels."""
    cdef Py_ssize_t n = ty.shape[0], t, y, x, w = gray.shape[1]
    cdef int64_t s1, s2, g1, g2, v, lap
    cdef double area = <double>tile * tile, m
    cdef const uint8_t* row
    with nogil:
        for t in prange(n, schedule="dynamic"):
            s1 = 0
            s2 = 0
            g1 = 0
            g2 = 0
            for y in range(ty[t], ty[t] + tile):
                row = &gray[y, 0]
                for x in range(tx[t], tx[t] + tile):
                    v = row[x]
                    lap = row[x - 1] + row[x + 1] + row[x - w] + row[x + w] - 4 * v
                    s1 = s1 + lap
                    s2 = s2 + lap * lap
                    g1 = g1 + v
                    g2 = g2 + v * v
            m = s1 / area
            lap_var[t] = s2 / area - m * m
            m = g1 / area
            gray_var[t] = g2 / area - m * m


def saturated_tiles(
    const uint8_t[:, ::1] gray, int tile, int level, double[:, ::1] out, uint16_t[:, ::1] acc
):
    """``out[i, j]`` = the fraction of pixels >= ``level`` in the tile x tile block (i, j).

    ``acc`` is (n, tw * tile) scratch (tile <= 65535): tile rows are split into n bands, each
    counting its tile's rows column by column into its own ``acc`` row (a loop that
    vectorizes), then ``tile`` columns at a time."""
    cdef Py_ssize_t th = out.shape[0], tw = out.shape[1], n = acc.shape[0], wt = tw * tile
    cdef Py_ssize_t band, i, i0, i1, j, y, x
    cdef int64_t count
    cdef double area = <double>tile * tile
    cdef const uint8_t* row
    cdef uint16_t* a
    cdef uint8_t lv = <uint8_t>level
    if level <= 0:
        lv = 0
    elif level > 255:
        for i in range(th):
            for j in range(tw):
                out[i, j] = 0.0
        return
    with nogil:
        for band in prange(n, schedule="static"):
            i0 = band * th // n
            i1 = (band + 1) * th // n
            a = &acc[band, 0]
            for i in range(i0, i1):
                for x in range(wt):
                    a[x] = 0
                for y in range(i * tile, (i + 1) * tile):
                    row = &gray[y, 0]
                    for x in range(wt):
                        a[x] = <uint16_t>(a[x] + (row[x] >= lv))
                for j in range(tw):
                    count = 0
                    for x in range(j * tile, (j + 1) * tile):
                        count = count + a[x]
                    out[i, j] = count / area


cdef inline Py_ssize_t _reflect(Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Mirror an index into 0 .. n-1 without repeating the edge (NumPy's "reflect")."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


def sauvola(
    const uint8_t[:, ::1] gray, uint8_t[:, ::1] out, int window, double k, double r,
    int64_t[:, ::1] colsum, int64_t[:, ::1] colsq, int bands,
):
    """Sauvola binarization: 255 where grey > m (1 + k (s / r - 1)), else 0.

    m and s are the mean and standard deviation over the ``window`` x ``window`` square around
    each pixel, the image mirrored at its edges. The window sums are differences of running
    (integral) sums: per band of rows, ``colsum``/``colsq`` (bands, w) hold each column's sum
    over the window's rows, updated by one row in and one out as the band moves down, and each
    row is then swept left to right adding one column and dropping another.
    """
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1], half = window // 2
    cdef Py_ssize_t band, y, x, yy, y0, y1, xa, xb
    cdef int64_t s1, s2, v
    cdef double n = <double>window * window, m, g2, var, s, t
    cdef const uint8_t* row
    with nogil:
        for band in prange(bands, schedule="static"):
            y0 = band * h // bands
            y1 = (band + 1) * h // bands
            if y0 >= y1:
                continue
            for x in range(w):
                colsum[band, x] = 0
                colsq[band, x] = 0
            for yy in range(y0 - half, y0 + half + 1):
                row = &gray[_reflect(yy, h), 0]
                for x in range(w):
                    v = row[x]
                    colsum[band, x] += v
                    colsq[band, x] += v * v
            for y in range(y0, y1):
                if y > y0:
                    row = &gray[_reflect(y + half, h), 0]
                    for x in range(w):
                        v = row[x]
                        colsum[band, x] += v
                        colsq[band, x] += v * v
                    row = &gray[_reflect(y - half - 1, h), 0]
                    for x in range(w):
                        v = row[x]
                        colsum[band, x] -= v
                        colsq[band, x] -= v * v
                s1 = 0
                s2 = 0
                for x in range(-half, half + 1):
                    s1 = s1 + colsum[band, _reflect(x, w)]
                    s2 = s2 + colsq[band, _reflect(x, w)]
                row = &gray[y, 0]
                for x in range(w):
                    if x > 0:
                        xa = _reflect(x + half, w)
                        xb = _reflect(x - half - 1, w)
                        s1 = s1 + colsum[band, xa] - colsum[band, xb]
                        s2 = s2 + colsq[band, xa] - colsq[band, xb]
                    m = s1 / n
                    g2 = s2 / n
                    var = g2 - m * m
                    if var < 0.0:
                        var = 0.0
                    s = sqrt(var)
                    t = m * (1 + k * ((s / r) - 1))
                    out[y, x] = 255 if row[x] > t else 0


def tile_variance(const uint8_t[:, ::1] gray, int tile, double[:, ::1] out):
    """``out[i, j]`` = the variance of the grey levels in the tile x tile block (i, j)."""
    cdef Py_ssize_t th = out.shape[0], tw = out.shape[1], i, j, y, x
    cdef int64_t s1, s2, v
    cdef double area = <double>tile * tile, m
    cdef const uint8_t* row
    with nogil:
        for i in prange(th, schedule="static"):
            for j in range(tw):
                s1 = 0
                s2 = 0
                for y in range(i * tile, (i + 1) * tile):
                    row = &gray[y, j * tile]
                    for x in range(tile):
                        v = row[x]
                        s1 = s1 + v
                        s2 = s2 + v * v
                m = s1 / area
                out[i, j] = s2 / area - m * m
