"""C reduction kernels (the skeletons; the math is the shared printer's).

Two loop orders, chosen from the coalesced layout:
- `rows`: the innermost dim is reduced (sum over the last axis, full reductions).
  One output per iteration of an OpenMP loop; the reduced elements are summed in
  vector lanes of the narrow type, blocks of `TS_RBLOCK` folded into a wide (double)
  accumulator.  When there is a single output (a full reduction) the reduced range
  itself is split over the threads and the partials are combined in thread order.
- `cols`: the innermost dim is kept (sum over a leading axis).  Each thread owns a
  block of contiguous outputs and walks the reduced rows, so the inner loop reads
  consecutive elements instead of striding down a column.
"""
from __future__ import annotations

from .ir import COMPUTE_CTYPE, DTYPES
from .lower import BCAST, ELEM, KERNEL, ROW, STRIDED, UNIT

COL_BLOCK = 512   # outputs per column block (accumulators stay in L1)


def _ct(sfx):
    return COMPUTE_CTYPE[sfx]


def _accs(r, ir):
    out = []
    for m, (v, dt, op) in enumerate(ir.outs):
        lane, wide = r.acc_types(op, dt)
        out.append((m, v, dt, op, lane, wide))
    return out


def _store(r, ir, accs, src, index, ind):
    o = []
    for m, v, dt, op, lane, wide in accs:
        st = DTYPES[dt].storage
        vdt = "fp64" if wide == "f64" else ("int64" if wide == "i64" else None)
        o.append(f"{ind}(({st} *)ptrs[{ir.nin + m}])[{index}] = {r.store_expr(src(m), dt, vdt)};")
    return o


def _decompose(ir, dims, slots, ind, index, rem, acc, init):
    """C lines that split the flat `index` over `dims` (innermost last) and add each
    slot's stride times the coordinate to `{acc}{k}`, which starts at `{init}{k}`
    (or 0 when init is None); broadcast dims add nothing."""
    nd = ir.ndim
    o = [f"{ind}int64_t {rem} = {index};"]
    o += [f"{ind}int64_t {acc}{k} = {init + str(k) if init else 0};" for k in slots]
    for d in reversed(dims):
        o.append(f"{ind}{{ int64_t i = {rem} % shape[{d}]; {rem} /= shape[{d}];")
        o += [f"{ind}  {acc}{k} += i * strides[{k * nd + d}];" for k in slots
              if ir.in_classes[k][d] != BCAST]
        o.append(f"{ind}}}")
    return o


def _outer_offsets(ir, kd, slots, ind):
    """b{k}: each slot's offset for output `o` (decomposed over the kept dims `kd`)."""
    return _decompose(ir, kd, slots, ind, "o", "rem", "b", None)


def _reduced_offsets(ir, rdims, slots, ind):
    """p{k}: base pointer of reduced row `r` (decomposed over `rdims`), s{k}: inner stride."""
    o = _decompose(ir, rdims, slots, ind, "r", "rr", "off", "b")
    for k in slots:
        st = DTYPES[ir.in_dtypes[k]].storage
        o.append(f"{ind}const {st} *restrict p{k} = (const {st} *)ptrs[{k}] + off{k};")
    return o


def _ld(ir, dim, idx):
    def ld(k):
        c = ir.in_classes[k][dim]
        return (f"p{k}[{idx}]" if c == UNIT else
                (f"p{k}[{idx} * strides[{k * ir.ndim + dim}]]" if c == STRIDED else f"p{k}[0]"))
    return ld


def rows(r, ir):
    nd = ir.ndim
    kd = [d for d in range(nd) if not ir.reduced[d]]
    rd = [d for d in range(nd) if ir.reduced[d]]
    rl = rd[-1]
    slots = r._slots(ir, (ROW, ELEM))
    eslots = r._slots(ir, (ELEM,))
    accs = _accs(r, ir)
    o = ["  int64_t O = 1, R = 1;"]
    o += [f"  O *= shape[{d}];" for d in kd] + [f"  R *= shape[{d}];" for d in rd]
    o += ["  if (O == 0) return;", f"  const int64_t L = shape[{rl}], nouter = L ? R / L : 0;"]
    r._kernel_level(ir, o)

    def body(ind):
        """Accumulate output `o` over reduced rows [rlo, rhi) and columns [jlo, jhi) into w{m}."""
        b = _outer_offsets(ir, kd, slots, ind)
        b += r.stmts_at(ir, ROW, lambda k: f"((const {DTYPES[ir.in_dtypes[k]].storage} *)"
                                           f"ptrs[{k}])[b{k}]", ind)
        b += [f"{ind}{_ct(wide)} w{m} = {r.identity(op, wide)};" for m, v, dt, op, lane, wide in accs]
        b.append(f"{ind}for (int64_t r = rlo; r < rhi; r++) {{")
        b += _reduced_offsets(ir, rd[:-1], eslots, ind + "  ")
        b += [f"{ind}  for (int64_t j0 = jlo; j0 < jhi; j0 += TS_RBLOCK) {{",
              f"{ind}    const int64_t jn = j0 + TS_RBLOCK < jhi ? j0 + TS_RBLOCK : jhi;"]
        for m, v, dt, op, lane, wide in accs:
            b += [f"{ind}    {_ct(lane)} a{m}[TS_LANES];",
                  f"{ind}    for (int l = 0; l < TS_LANES; l++) a{m}[l] = {r.identity(op, lane)};"]
        elem = r.stmts_at(ir, ELEM, _ld(ir, rl, "jj"), ind + "        ")
        b += [f"{ind}    int64_t j = j0;", f"{ind}    for (; j + TS_LANES <= jn; j += TS_LANES) {{",
              f"{ind}      #pragma omp simd", f"{ind}      for (int l = 0; l < TS_LANES; l++) {{",
              f"{ind}        const int64_t jj = j + l;"] + elem
        b += [f"{ind}        a{m}[l] = {r.combiner(op, lane)}(a{m}[l], ({_ct(lane)})v{v});"
              for m, v, dt, op, lane, wide in accs]
        b += [f"{ind}      }}", f"{ind}    }}", f"{ind}    for (; j < jn; j++) {{",
              f"{ind}        const int64_t jj = j;"] + elem
        b += [f"{ind}        a{m}[0] = {r.combiner(op, lane)}(a{m}[0], ({_ct(lane)})v{v});"
              for m, v, dt, op, lane, wide in accs]
        b.append(f"{ind}    }}")
        b += [f"{ind}    for (int l = 0; l < TS_LANES; l++) w{m} = "
              f"{r.combiner(op, wide)}(w{m}, ({_ct(wide)})a{m}[l]);" for m, v, dt, op, lane, wide in accs]
        b += [f"{ind}  }}", f"{ind}}}"]
        return b

    # one output (a full reduction): split the reduced range over the threads
    o += ["  if (O == 1 && R >= TS_OMP_MIN) {"]
    o += [f"    {_ct(wide)} part{m}[256];" for m, v, dt, op, lane, wide in accs]
    o += ["    int nt_used = 1;",
          "    #pragma omp parallel",
          "    {",
          "      int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();",
          "      if (nt > 256) nt = 256;",
          "      if (t == 0) nt_used = (int)nt;",
          "      int64_t rlo = 0, rhi = nouter, jlo = 0, jhi = L;",
          "      if (nouter >= nt) { rlo = nouter * t / nt; rhi = nouter * (t + 1) / nt; }",
          "      else { jlo = (L * t / nt) & ~(int64_t)63; jhi = t + 1 == nt ? L : (L * (t + 1) / nt) & ~(int64_t)63; }",
          "      const int64_t o = 0;",
          "      if (t < nt) {"]
    o += body("        ")
    o += [f"        part{m}[t] = w{m};" for m, v, dt, op, lane, wide in accs]
    o += ["      }", "    }"]
    o += [f"    {_ct(wide)} w{m} = part{m}[0];" for m, v, dt, op, lane, wide in accs]
    o += [f"    for (int t = 1; t < nt_used; t++) w{m} = {r.combiner(op, wide)}(w{m}, part{m}[t]);"
          for m, v, dt, op, lane, wide in accs]
    o += _store(r, ir, accs, lambda m: f"w{m}", "0", "    ")
    o += ["    return;", "  }"]
    o += ["  #pragma omp parallel for schedule(static) if (O * R >= TS_OMP_MIN && O > 1)",
          "  for (int64_t o = 0; o < O; o++) {",
          "    const int64_t rlo = 0, rhi = nouter, jlo = 0, jhi = L;"]
    o += body("    ")
    o += _store(r, ir, accs, lambda m: f"w{m}", "o", "    ")
    o.append("  }")
    return o


def cols(r, ir):
    """Innermost dim kept: blocks of COL_BLOCK contiguous outputs walk the reduced rows."""
    nd = ir.ndim
    last = nd - 1
    kd = [d for d in range(nd - 1) if not ir.reduced[d]]
    rd = [d for d in range(nd) if ir.reduced[d]]
    slots = r._slots(ir, (ROW, ELEM))
    accs = _accs(r, ir)
    o = ["  int64_t O = 1, R = 1;"]
    o += [f"  O *= shape[{d}];" for d in kd] + [f"  R *= shape[{d}];" for d in rd]
    o += [f"  const int64_t C = shape[{last}], nb = (C + {COL_BLOCK} - 1) / {COL_BLOCK};",
          "  if (O == 0 || C == 0) return;"]
    r._kernel_level(ir, o)
    o += _cols_split_rows(r, ir, kd, rd, slots, accs)
    o += ["  #pragma omp parallel for schedule(static) if (O * C * R >= TS_OMP_MIN && O * nb > 1)",
          "  for (int64_t ob = 0; ob < O * nb; ob++) {",
          "    const int64_t o = ob / nb, c0 = (ob % nb) * " + str(COL_BLOCK) + ";",
          f"    const int64_t cn = C - c0 < {COL_BLOCK} ? C - c0 : {COL_BLOCK};"]
    o += _outer_offsets(ir, kd, slots, "    ")
    for k in slots:
        if ir.in_classes[k][last] != BCAST:
            o.append(f"    b{k} += c0 * strides[{k * nd + last}];")
    o += [f"    {_ct(wide)} w{m}[{COL_BLOCK}];" for m, v, dt, op, lane, wide in accs]
    o += [f"    for (int64_t j = 0; j < cn; j++) w{m}[j] = {r.identity(op, wide)};"
          for m, v, dt, op, lane, wide in accs]
    o.append("    for (int64_t r = 0; r < R; r++) {")
    o += _reduced_offsets(ir, rd, slots, "      ")
    o += ["      #pragma omp simd", "      for (int64_t j = 0; j < cn; j++) {"]
    o += r.stmts_at_levels(ir, (ROW, ELEM), _ld(ir, last, "j"), "        ")
    o += [f"        w{m}[j] = {r.combiner(op, wide)}(w{m}[j], ({_ct(wide)})v{v});"
          for m, v, dt, op, lane, wide in accs]
    o += ["      }", "    }", "    for (int64_t j = 0; j < cn; j++) {"]
    o += _store(r, ir, accs, lambda m: f"w{m}[j]", "o * C + c0 + j", "      ")
    o += ["    }", "  }"]
    return o


def _cols_split_rows(r, ir, kd, rd, slots, accs):
    """One output row of at most SPLIT_MAX_C columns (sum over the leading axis of a
    matrix): the threads split the reduced rows and each streams whole rows (column
    blocks would have each thread hop 4 KiB pages, where the prefetcher stops); the
    per-thread partial rows are combined in thread order."""
    nd, last = ir.ndim, ir.ndim - 1
    if kd:
        return []
    o = [f"  if (O == 1 && C <= {SPLIT_MAX_C} && C * R >= TS_OMP_MIN) {{"]
    o += ["    int64_t mt = omp_get_max_threads();", "    if (mt > 256) mt = 256;"]
    o += [f"    {_ct(wide)} *part{m} = ({_ct(wide)} *)malloc(sizeof({_ct(wide)}) * C * mt);"
          for m, v, dt, op, lane, wide in accs]
    o += ["    int nt_used = 1;", "    #pragma omp parallel", "    {",
          "      int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();",
          "      if (nt > mt) nt = mt;", "      if (t == 0) nt_used = (int)nt;",
          "      const int64_t rlo = R * t / nt, rhi = R * (t + 1) / nt;"]
    o += [f"      {_ct(wide)} *w{m} = part{m} + t * C;" for m, v, dt, op, lane, wide in accs]
    o += [f"      for (int64_t j = 0; j < C && t < nt; j++) w{m}[j] = {r.identity(op, wide)};"
          for m, v, dt, op, lane, wide in accs]
    o += [f"      int64_t b{k} = 0;" for k in slots]
    o += ["      for (int64_t r = rlo; r < rhi && t < nt; r++) {"]
    o += _reduced_offsets(ir, rd, slots, "        ")
    o += ["        #pragma omp simd", "        for (int64_t j = 0; j < C; j++) {"]
    o += r.stmts_at_levels(ir, (ROW, ELEM), _ld(ir, last, "j"), "          ")
    o += [f"          w{m}[j] = {r.combiner(op, wide)}(w{m}[j], ({_ct(wide)})v{v});"
          for m, v, dt, op, lane, wide in accs]
    o += ["        }", "      }", "    }", "    for (int t = 1; t < nt_used; t++)",
          "      for (int64_t j = 0; j < C; j++) {"]
    o += [f"        part{m}[j] = {r.combiner(op, wide)}(part{m}[j], part{m}[t * C + j]);"
          for m, v, dt, op, lane, wide in accs]
    o += ["      }", "    for (int64_t j = 0; j < C; j++) {"]
    o += _store(r, ir, accs, lambda m: f"part{m}[j]", "j", "      ")
    o += ["    }"] + [f"    free(part{m});" for m, v, dt, op, lane, wide in accs]
    o += ["    return;", "  }"]
    return o


SPLIT_MAX_C = 8192

__all__ = ["rows", "cols", "KERNEL"]
