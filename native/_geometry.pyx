# cython: language_level=3
"""Geometry kernels: the largest connected region of a mask, projection-profile skew scores,
and a bilinear perspective warp.

Callers (saoy.core.pages.imaging) validate inputs and allocate every buffer; loops run without
the GIL.
"""

from cython.parallel cimport prange
from libc.math cimport floor
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t


def largest_component(const uint8_t[:, ::1] mask, int32_t[:, ::1] labels, int32_t[::1] stack):
    """Label the 4-connected regions of non-zero ``mask`` in ``labels`` (0 = background, then
    1, 2, ...) and return (label, size) of the largest; (0, 0) when the mask is empty.

    ``stack`` holds at least h * w entries (the flood fill's work list).
    """
    cdef Py_ssize_t h = mask.shape[0], w = mask.shape[1], y, x, top, p, py, px
    cdef int32_t label = 0, best = 0
    cdef int64_t size, best_size = 0
    with nogil:
        for y in range(h):
            for x in range(w):
                labels[y, x] = 0
        for y in range(h):
            for x in range(w):
                if mask[y, x] == 0 or labels[y, x] != 0:
                    continue
                label += 1
                size = 0
                labels[y, x] = label
                stack[0] = <int32_t>(y * w + x)
                top = 1
                while top > 0:
                    top -= 1
                    p = stack[top]
                    py = p // w
                    px = p - py * w
                    size += 1
                    if py > 0 and mask[py - 1, px] != 0 and labels[py - 1, px] == 0:
                        labels[py - 1, px] = label
                        stack[top] = <int32_t>(p - w)
                        top += 1
                    if py + 1 < h and mask[py + 1, px] != 0 and labels[py + 1, px] == 0:
                        labels[py + 1, px] = label
                        stack[top] = <int32_t>(p + w)
                        top += 1
                    if px > 0 and mask[py, px - 1] != 0 and labels[py, px - 1] == 0:
                        labels[py, px - 1] = label
                        stack[top] = <int32_t>(p - 1)
                        top += 1
                    if px + 1 < w and mask[py, px + 1] != 0 and labels[py, px + 1] == 0:
                        labels[py, px + 1] = label
                        stack[top] = <int32_t>(p + 1)
                        top += 1
                if size > best_size:
                    best_size = size
                    best = label
    return best, best_size


def profile_scores(
    const int32_t[::1] xs, const int32_t[::1] ys, const double[::1] slopes, int offset,
    int32_t[:, :, ::1] counts, double[::1] scores,
):
    """For each slope s, project the ink points onto rows ``y - s x`` (rounded, plus
    ``offset``), and score the profile by the sum of squared row counts: text lines that run
    along the slope give tall narrow peaks and the highest score.

    ``counts`` is (len(slopes), 4, bins), wide enough for every projected row, and ``offset``
    large enough that no projected row is negative. Points come row by row, so consecutive
    ones mostly fall in the same bin: they are counted in four interleaved profiles, summed
    for the score, so increments do not wait on each other.
    """
    cdef Py_ssize_t n = xs.shape[0], na = slopes.shape[0], nb = counts.shape[2], a, i, b
    cdef double s, total, off = offset + 0.5
    cdef int64_t c
    cdef int32_t* c0
    cdef int32_t* c1
    cdef int32_t* c2
    cdef int32_t* c3
    with nogil:
        for a in prange(na, schedule="static"):
            s = slopes[a]
            c0 = &counts[a, 0, 0]
            c1 = &counts[a, 1, 0]
            c2 = &counts[a, 2, 0]
            c3 = &counts[a, 3, 0]
            for b in range(nb):
                c0[b] = 0
                c1[b] = 0
                c2[b] = 0
                c3[b] = 0
            # Truncation of a non-negative value is floor (and needs no libm call).
            i = 0
            while i + 4 <= n:
                c0[<Py_ssize_t>(ys[i] - s * xs[i] + off)] += 1
                c1[<Py_ssize_t>(ys[i + 1] - s * xs[i + 1] + off)] += 1
                c2[<Py_ssize_t>(ys[i + 2] - s * xs[i + 2] + off)] += 1
                c3[<Py_ssize_t>(ys[i + 3] - s * xs[i + 3] + off)] += 1
                i = i + 4
            while i < n:
                c0[<Py_ssize_t>(ys[i] - s * xs[i] + off)] += 1
                i = i + 1
            total = 0.0
            for b in range(nb):
                c = <int64_t>c0[b] + c1[b] + c2[b] + c3[b]
                total = total + <double>(c * c)
            scores[a] = total


cdef inline uint8_t _lerp(
    const uint8_t* r0, Py_ssize_t right, Py_ssize_t down, int fx, int fy
) noexcept nogil:
    """Bilinear blend of the 2 x 2 samples at ``r0``, ``r0 + right``, ``r0 + down`` and
    ``r0 + down + right`` with 8-bit weights ``fx``, ``fy``."""
    cdef int top = r0[0] * 256 + (r0[right] - r0[0]) * fx
    cdef int bottom = r0[down] * 256 + (r0[down + right] - r0[down]) * fx
    return <uint8_t>((top * 256 + (bottom - top) * fy + 32768) >> 16)


cdef inline uint8_t _sample(
    const uint8_t* base, Py_ssize_t h, Py_ssize_t w, Py_ssize_t cn, int64_t X, int64_t Y,
    int fill,
) noexcept nogil:
    """Bilinear sample at 16.16 fixed-point (X, Y) of an image of ``cn`` interleaved channels
    (``base`` at the channel wanted), with ``fill`` outside the image."""
    cdef Py_ssize_t x0 = X >> 16, y0 = Y >> 16, row = w * cn, at = y0 * row + x0 * cn
    cdef int fx = (X >> 8) & 255, fy = (Y >> 8) & 255, p00, p01, p10, p11, top, bottom
    if x0 < -1 or y0 < -1 or x0 >= w or y0 >= h:
        return <uint8_t>fill
    p00 = base[at] if 0 <= x0 < w and 0 <= y0 < h else fill
    p01 = base[at + cn] if 0 <= x0 + 1 < w and 0 <= y0 < h else fill
    p10 = base[at + row] if 0 <= x0 < w and 0 <= y0 + 1 < h else fill
    p11 = base[at + row + cn] if 0 <= x0 + 1 < w and 0 <= y0 + 1 < h else fill
    top = p00 * 256 + (p01 - p00) * fx
    bottom = p10 * 256 + (p11 - p10) * fx
    return <uint8_t>((top * 256 + (bottom - top) * fy + 32768) >> 16)


cdef inline int64_t _fixed(double v) noexcept nogil:
    """``v`` (|v| < 2**20) in 16.16 fixed point, rounded: the bias makes the value positive,
    so truncation is floor, with no libm call."""
    cdef int64_t bias = (<int64_t>1) << 36
    return <int64_t>(v * 65536.0 + (0.5 + <double>bias)) - bias


cdef struct Span:
    int64_t X, Y, dX, dY  # the first sample and the step, 16.16 fixed point
    bint inside  # the first and the last sample lie inside the image: no bounds checks


cdef struct Point:
    double x, y


cdef inline Point _point(const double* m, double u, double v) noexcept nogil:
    """Where the row-major 3 x 3 matrix ``m`` maps (u, v, 1), dehomogenized."""
    cdef double wh = m[6] * u + m[7] * v + m[8]
    cdef Point p
    p.x = (m[0] * u + m[1] * v + m[2]) / wh
    p.y = (m[3] * u + m[4] * v + m[5]) / wh
    return p


cdef inline Span _span(
    Point a, Point b, Py_ssize_t n, int64_t lim_x, int64_t lim_y
) noexcept nogil:
    """``n`` samples from ``a`` stepping toward ``b``, reached after the last."""
    cdef Span s
    cdef int64_t Xl, Yl
    s.X = _fixed(a.x)
    s.Y = _fixed(a.y)
    s.dX = _fixed((b.x - a.x) / n)
    s.dY = _fixed((b.y - a.y) / n)
    Xl = s.X + (n - 1) * s.dX
    Yl = s.Y + (n - 1) * s.dY
    s.inside = 0 <= s.X < lim_x and 0 <= s.Y < lim_y and 0 <= Xl < lim_x and 0 <= Yl < lim_y
    return s


def warp(
    const uint8_t[:, ::1] src, uint8_t[:, ::1] dst, const double[:, ::1] m, int fill, int span
):
    """Bilinear warp: ``dst[v, u]`` samples ``src`` at the point the 3 x 3 matrix ``m`` maps
    (u, v, 1) to (homogeneous coordinates); samples outside ``src`` read as ``fill``.

    Each row is cut into spans of ``span`` pixels. The source point is computed exactly at both
    ends of a span and stepped linearly between them in 16.16 fixed point, with 8-bit bilinear
    weights (exact for an affine ``m``; for a perspective one the error is the curvature over
    one span, a small fraction of a pixel for 16). A span whose first and last samples lie
    inside the image runs without bounds checks.
    """
    cdef Py_ssize_t oh = dst.shape[0], ow = dst.shape[1], h = src.shape[0], w = src.shape[1]
    cdef Py_ssize_t v, u, u0, n
    cdef int64_t X, Y, dX, dY, lim_x = <int64_t>(w - 1) << 16, lim_y = <int64_t>(h - 1) << 16
    cdef Point a, b
    cdef Span s
    cdef const double* mp = &m[0, 0]
    cdef const uint8_t* base = &src[0, 0]
    cdef uint8_t* out
    with nogil:
        for v in prange(oh, schedule="static"):
            out = &dst[v, 0]
            u0 = 0
            a = _point(mp, 0, v)
            while u0 < ow:
                n = span if u0 + span <= ow else ow - u0
                b = _point(mp, u0 + n, v)
                s = _span(a, b, n, lim_x, lim_y)
                a = b
                X = s.X
                Y = s.Y
                dX = s.dX
                dY = s.dY
                if s.inside:
                    for u in range(u0, u0 + n):
                        out[u] = _lerp(
                            base + (Y >> 16) * w + (X >> 16), 1, w, (X >> 8) & 255, (Y >> 8) & 255
                        )
                        X = X + dX
                        Y = Y + dY
                else:
                    for u in range(u0, u0 + n):
                        out[u] = _sample(base, h, w, 1, X, Y, fill)
                        X = X + dX
                        Y = Y + dY
                u0 = u0 + n


def warp_rgb(
    const uint8_t[:, :, ::1] src, uint8_t[:, :, ::1] dst, const double[:, ::1] m, int fill,
    int span,
):
    """``warp`` of an interleaved H x W x 3 image: the source point and bilinear weights of
    each output pixel are found once and serve its three channels, with the same arithmetic
    as ``warp`` on each channel alone."""
    cdef Py_ssize_t oh = dst.shape[0], ow = dst.shape[1], h = src.shape[0], w = src.shape[1]
    cdef Py_ssize_t v, u, u0, n, c, stride = 3 * w
    cdef int64_t X, Y, dX, dY, lim_x = <int64_t>(w - 1) << 16, lim_y = <int64_t>(h - 1) << 16
    cdef Point a, b
    cdef int fx, fy
    cdef Span s
    cdef const double* mp = &m[0, 0]
    cdef const uint8_t* base = &src[0, 0, 0]
    cdef const uint8_t* r0
    cdef uint8_t* out
    with nogil:
        for v in prange(oh, schedule="static"):
            out = &dst[v, 0, 0]
            u0 = 0
            a = _point(mp, 0, v)
            while u0 < ow:
                n = span if u0 + span <= ow else ow - u0
                b = _point(mp, u0 + n, v)
                s = _span(a, b, n, lim_x, lim_y)
                a = b
                X = s.X
                Y = s.Y
                dX = s.dX
                dY = s.dY
                if s.inside:
                    for u in range(u0, u0 + n):
                        fx = (X >> 8) & 255
                        fy = (Y >> 8) & 255
                        r0 = base + (Y >> 16) * stride + 3 * (X >> 16)
                        for c in range(3):
                            out[3 * u + c] = _lerp(r0 + c, 3, stride, fx, fy)
                        X = X + dX
                        Y = Y + dY
                else:
                    for u in range(u0, u0 + n):
                        for c in range(3):
                            out[3 * u + c] = _sample(base + c, h, w, 3, X, Y, fill)
                        X = X + dX
                        Y = Y + dY
                u0 = u0 + n


cdef inline void _shear_row(
    const uint8_t* row, Py_ssize_t w, uint8_t* out, Py_ssize_t ow, double shift, int fill
) noexcept nogil:
    """out[x] = row[x + shift], linear, ``fill`` beyond the row's ends."""
    cdef Py_ssize_t k = <Py_ssize_t>floor(shift), x, lo, hi
    cdef int f = <int>floor((shift - k) * 256.0 + 0.5), p0, p1
    cdef uint16_t f16, g16
    if f == 256:
        k = k + 1
        f = 0
    f16 = <uint16_t>f
    g16 = <uint16_t>(256 - f)
    # x reads row[x + k] and row[x + k + 1]: both inside for lo <= x < hi.
    lo = -k if -k > 0 else 0
    hi = w - 1 - k
    if hi > ow:
        hi = ow
    if lo > ow:
        lo = ow
    if hi < lo:
        hi = lo
    for x in range(lo):
        p0 = row[x + k] if 0 <= x + k < w else fill
        p1 = row[x + k + 1] if 0 <= x + k + 1 < w else fill
        out[x] = <uint8_t>((p0 * (256 - f) + p1 * f + 128) >> 8)
    for x in range(lo, hi):
        out[x] = <uint8_t>(<uint16_t>(row[x + k] * g16 + row[x + k + 1] * f16 + 128) >> 8)
    for x in range(hi, ow):
        p0 = row[x + k] if 0 <= x + k < w else fill
        p1 = row[x + k + 1] if 0 <= x + k + 1 < w else fill
        out[x] = <uint8_t>((p0 * (256 - f) + p1 * f + 128) >> 8)


def shear_rows(
    const uint8_t[:, ::1] src, uint8_t[:, ::1] dst, double a, double e, Py_ssize_t K, int fill
):
    """``dst[y, x]`` = ``src[y + K, x + a y + e]``, linear along the row: every output row is
    its source row shifted by one constant, so one pair of 8-bit weights serves the whole row
    and the inner loop vectorizes. Rows and columns outside ``src`` read as ``fill``."""
    cdef Py_ssize_t oh = dst.shape[0], ow = dst.shape[1], h = src.shape[0], w = src.shape[1]
    cdef Py_ssize_t y, x, r
    with nogil:
        for y in prange(oh, schedule="static"):
            r = y + K
            if r < 0 or r >= h:
                for x in range(ow):
                    dst[y, x] = <uint8_t>fill
            else:
                _shear_row(&src[r, 0], w, &dst[y, 0], ow, a * y + e, fill)


cdef inline void _shear_col_row(
    const uint8_t[:, ::1] src, Py_ssize_t y, uint8_t* out,
    const Py_ssize_t[::1] run_start, const Py_ssize_t[::1] run_k, const uint16_t[::1] weight,
    int fill,
) noexcept nogil:
    """One output row of the column shear (see ``shear_cols``)."""
    cdef Py_ssize_t h = src.shape[0], nr = run_k.shape[0], x, r, x0, x1, i
    cdef int p0, p1
    cdef const uint8_t* a
    cdef const uint8_t* b
    cdef const uint16_t* wt = &weight[0]
    for r in range(nr):
        x0 = run_start[r]
        x1 = run_start[r + 1]
        i = y + run_k[r]
        if i >= 0 and i + 1 < h:
            a = &src[i, 0]
            b = &src[i + 1, 0]
            for x in range(x0, x1):
                out[x] = <uint8_t>(<uint16_t>(a[x] * <uint16_t>(256 - wt[x]) + b[x] * wt[x] + 128) >> 8)
        else:
            for x in range(x0, x1):
                p0 = src[i, x] if 0 <= i < h else fill
                p1 = src[i + 1, x] if 0 <= i + 1 < h else fill
                out[x] = <uint8_t>((p0 * (256 - wt[x]) + p1 * wt[x] + 128) >> 8)


def shear_cols_rows(
    const uint8_t[:, ::1] src, uint8_t[:, ::1] dst,
    const Py_ssize_t[::1] run_start, const Py_ssize_t[::1] run_k, const uint16_t[::1] weight,
    double a, double e, int fill, uint8_t[:, ::1] scratch,
):
    """The last two passes of a three-shear rotation, row by row without an intermediate
    image: output row y is first the column shear of ``src`` (row y of ``I``, where
    ``I[y, x]`` = ``src[y + k + f / 256, x]``, column x in the run r with ``run_start[r] <= x <
    run_start[r + 1]``, k = ``run_k[r]`` and f = ``weight[x]``), then that row sheared along x:
    ``dst[y, x]`` = ``I[y, x + a y + e]``.

    Within a run both source rows are fixed, so the column shear's inner loop is two contiguous
    rows weighted column by column. ``scratch`` is (n, len(weight)): output rows are split into
    n bands, each building its rows of ``I`` in its own scratch row. Outside ``src``: ``fill``.
    """
    cdef Py_ssize_t oh = dst.shape[0], ow = dst.shape[1], n = scratch.shape[0]
    cdef Py_ssize_t w2 = scratch.shape[1], band, y, y0, y1
    with nogil:
        for band in prange(n, schedule="static"):
            y0 = band * oh // n
            y1 = (band + 1) * oh // n
            for y in range(y0, y1):
                _shear_col_row(src, y, &scratch[band, 0], run_start, run_k, weight, fill)
                _shear_row(&scratch[band, 0], w2, &dst[y, 0], ow, a * y + e, fill)
