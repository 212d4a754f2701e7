"""The C-like expression printer shared by the C and CUDA renderers.

Languages are data here: `Renderer.code` maps an op to a template over the
functors of tessera/kernels/functors.cuh (one definition per function, included
by both the C and the CUDA sources).  Subclasses override a few table entries
and the kernel skeleton (loops, indexing, signature), never the math.
"""
from __future__ import annotations

import math

from .ir import COMPUTE_CTYPE, DTYPES, OPS
from .lower import LoopIR, Stmt

# Casts into these round once from the exact source value (tessera/precision/convert.py):
# fp64 goes to float rounded to odd first, int32/int64 through an exact / odd double.
_F64_SINGLE_ROUNDING = {"fp16", "bf16", "fp8_e4m3", "fp8_e5m2"}
_TO_ODD_FLOAT = {"f64": "ts_f64_to_f32_odd({})", "i32": "ts_f64_to_f32_odd((double)({}))",
                 "i64": "ts_f64_to_f32_odd(ts_i64_to_f64_odd({}))"}

_FUNCTOR_OPS = [o for o, i in OPS.items() if i.arity > 0 and i.result != "reduce" and o != "cast"]


class Renderer:
    """Prints statements of a `LoopIR` as C expressions over the functors."""
    # op -> template; {s}: functor suffix of the srcs' compute type, {0} {1} {2}: operands
    code: dict = {op: "ts_%s_{s}(%s)" % (op, ", ".join("{%d}" % i for i in range(OPS[op].arity)))
                  for op in _FUNCTOR_OPS}
    # float/int compute, wide reduction accumulator: (lane suffix, wide suffix) per (op, kind)
    wide_float_sum = "f64"   # blocked lanes in float, blocks summed in double (CPU)

    # ----------------------------------------------------------------- scalars
    @staticmethod
    def ctype(dtype: str) -> str:
        return COMPUTE_CTYPE[DTYPES[dtype].compute]

    def literal(self, value, dtype: str) -> str:
        """A C literal of `value` in the compute type of `dtype` (inf/nan included)."""
        d = DTYPES[dtype]
        if d.kind == "b":
            return "1" if value else "0"
        if d.kind in "iu":
            v = int(value)
            if dtype == "int64" and v == -2**63:
                return "(-9223372036854775807LL - 1)"
            return f"(({COMPUTE_CTYPE[d.compute]}){v}LL)"
        v = float(value)
        sfx = d.compute.upper()
        if math.isnan(v):
            return f"(-TS_NAN_{sfx})" if math.copysign(1, v) < 0 else f"TS_NAN_{sfx}"
        if math.isinf(v):
            return f"TS_INF_{sfx}" if v > 0 else f"(-TS_INF_{sfx})"
        return f"(({COMPUTE_CTYPE[d.compute]}){v.hex()})" if d.compute == "f32" else f"({v.hex()})"

    def param_ref(self, k: int, dtype: str) -> str:
        """Expression reading runtime parameter k (a double or an int64 slot)."""
        return f"fp[{k}]" if DTYPES[dtype].kind == "f" else f"ip[{k}]"

    def param_expr(self, k: int, dtype: str) -> str:
        ref = self.param_ref(k, dtype)
        d = DTYPES[dtype]
        if d.kind == "b":
            return f"(uint8_t)({ref} != 0)"
        return f"({COMPUTE_CTYPE[d.compute]}){ref}"

    # ----------------------------------------------------------------- storage
    def load_expr(self, raw: str, dtype: str) -> str:
        d = DTYPES[dtype]
        if d.load:
            return f"{d.load}({raw})"
        if d.kind == "b":
            return f"(uint8_t)({raw} != 0)"
        return raw

    def store_expr(self, v: str, dtype: str, vdtype: str | None = None) -> str:
        """`v` (compute type of `vdtype`, default `dtype`) encoded as `dtype`'s storage."""
        d = DTYPES[dtype]
        vc = DTYPES[vdtype or dtype].compute
        if d.store:
            if vc == "f64":
                odd = dtype in _F64_SINGLE_ROUNDING
                v = f"ts_f64_to_f32_odd({v})" if odd else f"(float)({v})"
            return f"{d.store}({v})"
        if d.kind == "b":
            return f"(uint8_t)({v} != 0)"
        return f"({d.storage})({v})"

    # ----------------------------------------------------------------- ops
    def cast_expr(self, a: str, src: str, dst: str, arg) -> str:
        s, t = DTYPES[src], DTYPES[dst]
        if src == dst:
            return a
        if t.kind == "b":
            return f"(uint8_t)({a} != 0)"
        if t.kind == "f":
            if t.rnd:  # narrow float: the value rounded to the target's values, kept in float
                rnd = t.rnd
                if arg == "saturate" and dst.startswith("fp8"):
                    rnd = rnd.replace("round", "satur")
                odd = s.compute in _TO_ODD_FLOAT and dst in _F64_SINGLE_ROUNDING
                x = _TO_ODD_FLOAT[s.compute].format(a) if odd else f"(float)({a})"
                return f"{rnd}({x})"
            return f"({COMPUTE_CTYPE[t.compute]})({a})"
        # integer targets
        ct = COMPUTE_CTYPE[t.compute]
        if s.kind == "f":
            fn = "ts_f2i64" if dst == "int64" else "ts_f2i32"
            return f"({ct}){fn}({a})"
        return f"({ct})({a})"

    def expr(self, st: Stmt, names) -> str:
        """Right-hand side of statement `st`; `names[v]` is the operand expression of var v."""
        ops = [names[a] for a in st.args]
        if st.op == "cast":
            return self.cast_expr(ops[0], st.src_dtype, st.dtype, st.arg)
        src = st.src_dtype or st.dtype
        return self.code[st.op].format(*ops, s=DTYPES[src].compute)

    # ----------------------------------------------------------------- reductions
    def acc_types(self, op: str, dtype: str):
        """(lane suffix, wide suffix) a reduction of `dtype` accumulates in."""
        d = DTYPES[dtype]
        if d.kind in "iu":
            return "i64", "i64"
        if d.kind == "b":
            return "b", "b"
        if op in ("reduce_sum", "reduce_prod") and d.compute == "f32":
            return "f32", self.wide_float_sum
        return d.compute, d.compute

    def identity(self, op: str, sfx: str) -> str:
        if op == "reduce_sum":
            return "0"
        if op == "reduce_prod":
            return "1"
        big = {"f32": "TS_INF_F32", "f64": "TS_INF_F64", "i64": "9223372036854775807LL",
               "b": "1"}[sfx]
        if op == "reduce_min":
            return big
        return {"f32": "(-TS_INF_F32)", "f64": "(-TS_INF_F64)",
                "i64": "(-9223372036854775807LL - 1)", "b": "0"}[sfx]

    @staticmethod
    def combiner(op: str, sfx: str) -> str:
        return f"ts_r{op[len('reduce_'):]}_{sfx}"

    # ----------------------------------------------------------------- helpers
    def stmt_line(self, st: Stmt, names, load_of) -> str:
        """`const T vN = ...;` for one statement (loads through `load_of(slot)`)."""
        if st.op == "param":
            rhs = self.param_expr(st.arg, st.dtype)
        elif st.op == "load":
            rhs = self.load_expr(load_of(st.arg), st.dtype)
        else:
            rhs = self.expr(st, names)
        return f"const {self.ctype(st.dtype)} v{st.var} = {rhs};"

    def stmts_at(self, ir: LoopIR, level: int, load_of, indent: str) -> list:
        names = {s.var: f"v{s.var}" for s in ir.stmts}
        return [indent + self.stmt_line(s, names, load_of) for s in ir.stmts if s.level == level]

    def stmts_at_levels(self, ir: LoopIR, levels, load_of, indent: str) -> list:
        names = {s.var: f"v{s.var}" for s in ir.stmts}
        return [indent + self.stmt_line(s, names, load_of) for s in ir.stmts if s.level in levels]
