"""Row programs (fusion mode "aggressive"): reductions over the last axis and the
elementwise nodes that consume them, as one kernel that owns whole rows.

softmax written from primitives, exp(x - max(x)) / sum(exp(x - max(x))), has two
reductions, the second reading the first: its *phase* is 2.  Per row the kernel
makes one pass over the row for each phase (pass q computes the reductions of
phase q + 1 from the element statements they need, recomputed, the row being in
L1), then a last pass writes the elementwise outputs.  Row-constant statements
(loads broadcast along the row, reduced values and what is computed from them)
are emitted once per row, right after the pass that makes them available.

C: an OpenMP loop over rows, each pass summing in vector lanes (as the plain
reductions do).  CUDA/HIP: one block per row, threads stride over the row, a
reduction is warp shuffles (`WARP_SIZE`, `shfl_xor` from compat.cuh) then one
shared-memory step, and its value is broadcast to the block through shared memory.
"""
from __future__ import annotations

from .ir import COMPUTE_CTYPE, DTYPES, REDUCE_OPS
from .lower import ELEM, KERNEL, ROW, STRIDED, UNIT


def phases(ir):
    """Per statement: how many reductions deep it is (a reduction adds one)."""
    ph = []
    for st in ir.stmts:
        p = max((ph[a] for a in st.args), default=0)
        ph.append(p + 1 if st.op in REDUCE_OPS else p)
    return ph


def _cone(ir, roots):
    """Vars the `roots` depend on (themselves included)."""
    need, stack = set(), list(roots)
    while stack:
        v = stack.pop()
        if v in need:
            continue
        need.add(v)
        st = ir.stmts[v]
        if st.op not in REDUCE_OPS or v in roots:
            stack.extend(st.args)
    return need


def plan(ir):
    """[(reductions of pass q, element vars of pass q, row vars emitted after it)], the
    row vars of phase 0, and the element vars of the output pass."""
    ph = phases(ir)
    depth = max(ph)
    row0 = [s.var for s in ir.stmts if s.level == ROW and ph[s.var] == 0 and s.op not in REDUCE_OPS]
    passes = []
    for q in range(depth):
        reds = [s.var for s in ir.stmts if s.op in REDUCE_OPS and ph[s.var] == q + 1]
        cone = _cone(ir, [ir.stmts[r].args[0] for r in reds])
        elem = [s.var for s in ir.stmts if s.var in cone and s.level == ELEM]
        after = [s.var for s in ir.stmts if s.level == ROW and ph[s.var] == q + 1
                 and s.op not in REDUCE_OPS]
        passes.append((reds, elem, after))
    outs = _cone(ir, [v for v, _, r in ir.outs if r != "row"])
    final = [s.var for s in ir.stmts if s.var in outs and s.level == ELEM]
    return row0, passes, final


def _reduced_value(r, st, wide, w):
    """The reduction's result in its dtype's compute type (narrow floats rounded)."""
    d = DTYPES[st.dtype]
    ct = COMPUTE_CTYPE[d.compute]
    if d.rnd:
        return f"{d.rnd}((float)({w}))"
    return f"({ct})({w})"


def _lines(r, ir, vars_, load_of, ind):
    names = {s.var: f"v{s.var}" for s in ir.stmts}
    return [ind + r.stmt_line(ir.stmts[v], names, load_of) for v in vars_]


# --------------------------------------------------------------------------- C
def c_rows(r, ir):
    nd = ir.ndim
    kd = list(range(nd - 1))
    last = nd - 1
    row0, passes, final = plan(ir)
    slots = r._slots(ir, (ROW, ELEM))
    o = ["  int64_t O = 1;"] + [f"  O *= shape[{d}];" for d in kd]
    o += [f"  const int64_t L = shape[{last}];", "  if (O == 0) return;"]
    r._kernel_level(ir, o)
    o += ["  #pragma omp parallel for schedule(static) if (O * L >= TS_OMP_MIN && O > 1)",
          "  for (int64_t o = 0; o < O; o++) {", "    int64_t rem = o;"]
    o += [f"    int64_t b{k} = 0;" for k in slots]
    for d in reversed(kd):
        o.append(f"    {{ int64_t i = rem % shape[{d}]; rem /= shape[{d}];")
        o += [f"      b{k} += i * strides[{k * nd + d}];" for k in slots if ir.in_classes[k][d] != 0]
        o.append("    }")
    for k in slots:
        st = DTYPES[ir.in_dtypes[k]].storage
        o.append(f"    const {st} *restrict p{k} = (const {st} *)ptrs[{k}] + b{k};")
        if ir.in_classes[k][last] == STRIDED:
            o.append(f"    const int64_t s{k} = strides[{k * nd + last}];")

    def ld(k):
        c = ir.in_classes[k][last]
        return f"p{k}[j]" if c == UNIT else (f"p{k}[j * s{k}]" if c == STRIDED else "p{k}[0]".format(k=k))
    o += _lines(r, ir, row0, lambda k: f"p{k}[0]", "    ")
    for reds, elem, after in passes:
        accs = []
        for m in reds:
            st = ir.stmts[m]
            lane, wide = r.acc_types(st.op, st.dtype)
            accs.append((m, st, lane, wide))
            o.append(f"    {COMPUTE_CTYPE[wide]} w{m} = {r.identity(st.op, wide)};")
        o += ["    for (int64_t j0 = 0; j0 < L; j0 += TS_RBLOCK) {",
              "      const int64_t jn = j0 + TS_RBLOCK < L ? j0 + TS_RBLOCK : L;"]
        for m, st, lane, wide in accs:
            o += [f"      {COMPUTE_CTYPE[lane]} a{m}[TS_LANES];",
                  f"      for (int l = 0; l < TS_LANES; l++) a{m}[l] = {r.identity(st.op, lane)};"]
        body = _lines(r, ir, elem, ld, "          ")
        comb = [(m, f"{r.combiner(st.op, lane)}", COMPUTE_CTYPE[lane], st.args[0]) for m, st, lane, wide in accs]
        o += ["      int64_t jb = j0;", "      for (; jb + TS_LANES <= jn; jb += TS_LANES) {",
              "        #pragma omp simd", "        for (int l = 0; l < TS_LANES; l++) {",
              "          const int64_t j = jb + l;"] + body
        o += [f"          a{m}[l] = {c}(a{m}[l], ({t})v{s});" for m, c, t, s in comb]
        o += ["        }", "      }", "      for (; jb < jn; jb++) {", "          const int64_t j = jb;"] + body
        o += [f"          a{m}[0] = {c}(a{m}[0], ({t})v{s});" for m, c, t, s in comb]
        o += ["      }"]
        o += [f"      for (int l = 0; l < TS_LANES; l++) w{m} = {r.combiner(st.op, wide)}(w{m}, "
              f"({COMPUTE_CTYPE[wide]})a{m}[l]);" for m, st, lane, wide in accs]
        o.append("    }")
        o += [f"    const {r.ctype(st.dtype)} v{m} = {_reduced_value(r, st, wide, f'w{m}')};"
              for m, st, lane, wide in accs]
        o += _lines(r, ir, after, lambda k: f"p{k}[0]", "    ")
    outs = [(m, v, dt) for m, (v, dt, kind) in enumerate(ir.outs) if kind != "row"]
    if outs:
        o += ["    #pragma omp simd", "    for (int64_t j = 0; j < L; j++) {"]
        o += _lines(r, ir, final, ld, "      ")
        o += [f"      (({DTYPES[dt].storage} *)ptrs[{ir.nin + m}])[o * L + j] = {r.store_expr(f'v{v}', dt)};"
              for m, v, dt in outs]
        o.append("    }")
    for m, (v, dt, kind) in enumerate(ir.outs):
        if kind == "row":
            o.append(f"    (({DTYPES[dt].storage} *)ptrs[{ir.nin + m}])[o] = {r.store_expr(f'v{v}', dt)};")
    o.append("  }")
    return o


# --------------------------------------------------------------------------- CUDA
# The cross-warp scratch of a row reduction: (name, C type), one 32-slot array each (one
# slot per warp), declared only when the kernel uses it.
_SCRATCH = (("ts_red", "double"), ("ts_redi", "long long"))


def _shared_decl(name, ctype):
    # Joined, not f"{t} {n}": the H200 run compiled `__shared__ doublets_red[32];`, the
    # one space between the two fields gone (not reproduced with this text under CPython
    # 3.11-3.13), so the separator is not left to a whitespace-only literal.
    return "  " + " ".join(("__shared__", ctype, name + "[32];"))


def cuda_rows(r, ir):
    nd = ir.ndim
    kd = list(range(nd - 1))
    last = nd - 1
    row0, passes, final = plan(ir)
    slots = r._slots(ir, (ROW, ELEM))
    o = r.stmts_at(ir, KERNEL, lambda k: f"in{k}[0]", "  ")
    o += ["  long long O = 1;"] + [f"  O *= sh{d};" for d in kd]
    o += [f"  const long long L = sh{last};",
          "TS_SHARED_DECLS",
          "  const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;",
          "  const int nwarps = (blockDim.x + WARP_SIZE - 1) / WARP_SIZE;",
          "  for (long long o = blockIdx.x; o < O; o += gridDim.x) {", "    long long rem = o;"]
    o += [f"    long long b{k} = 0;" for k in slots]
    for d in reversed(kd):
        o.append(f"    {{ const long long c = rem % sh{d}; rem /= sh{d};")
        o += [f"      b{k} += c * st{k}_{d};" for k in slots if ir.in_classes[k][d] != 0]
        o.append("    }")

    def ld(k):
        return f"in{k}[b{k} + j * st{k}_{last}]" if ir.in_classes[k][last] != 0 else f"in{k}[b{k}]"
    o += _lines(r, ir, row0, lambda k: f"in{k}[b{k}]", "    ")
    for reds, elem, after in passes:
        accs = []
        for m in reds:
            st = ir.stmts[m]
            _, wide = r.acc_types(st.op, st.dtype)
            accs.append((m, st, wide))
            o.append(f"    {COMPUTE_CTYPE[wide]} w{m} = {r.identity(st.op, wide)};")
        o += ["    for (long long j = threadIdx.x; j < L; j += blockDim.x) {"]
        o += _lines(r, ir, elem, ld, "      ")
        o += [f"      w{m} = {r.combiner(st.op, wide)}(w{m}, ({COMPUTE_CTYPE[wide]})v{st.args[0]});"
              for m, st, wide in accs]
        o.append("    }")
        for m, st, wide in accs:
            ct = COMPUTE_CTYPE[wide]
            sh = "int" if wide == "b" else ct
            sm, smt = _SCRATCH[1] if wide in ("i64", "b") else _SCRATCH[0]
            comb = r.combiner(st.op, wide)
            o += [f"    for (int off = WARP_SIZE / 2; off > 0; off >>= 1) "
                  f"w{m} = {comb}(w{m}, ({ct})shfl_xor(({sh})w{m}, off));",
                  f"    if (lane == 0) {sm}[warp] = ({smt})w{m};", "    __syncthreads();",
                  "    if (warp == 0) {",
                  f"      w{m} = lane < nwarps ? ({ct}){sm}[lane] : ({ct}){r.identity(st.op, wide)};",
                  f"      for (int off = WARP_SIZE / 2; off > 0; off >>= 1) "
                  f"w{m} = {comb}(w{m}, ({ct})shfl_xor(({sh})w{m}, off));",
                  f"      if (lane == 0) {sm}[0] = ({smt})w{m};", "    }", "    __syncthreads();",
                  f"    w{m} = ({ct}){sm}[0];", "    __syncthreads();",
                  f"    const {r.ctype(st.dtype)} v{m} = {_reduced_value(r, st, wide, f'w{m}')};"]
        o += _lines(r, ir, after, lambda k: f"in{k}[b{k}]", "    ")
    outs = [(m, v, dt) for m, (v, dt, kind) in enumerate(ir.outs) if kind != "row"]
    if outs:
        o += ["    for (long long j = threadIdx.x; j < L; j += blockDim.x) {"]
        o += _lines(r, ir, final, ld, "      ")
        o += [f"      out{m}[o * L + j] = {r.store_expr(f'v{v}', dt)};" for m, v, dt in outs]
        o.append("    }")
    for m, (v, dt, kind) in enumerate(ir.outs):
        if kind == "row":
            o.append(f"    if (threadIdx.x == 0) out{m}[o] = {r.store_expr(f'v{v}', dt)};")
    o.append("  }")
    decl = [_shared_decl(n, t) for n, t in _SCRATCH if any(f"{n}[" in ln for ln in o)]
    i = o.index("TS_SHARED_DECLS")
    return o[:i] + decl + o[i + 1:]
