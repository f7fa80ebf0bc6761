#!/usr/bin/env python3
"""Checks the compiled FMA probe keeps every accumulator chain it counts (issue 19: the AVX2 loop
returned one chain of twelve, the compiler dropped the other eleven and the probe read 1.5x).

    bench/check_fma_loop.py OBJECT CHAINS

Disassembles OBJECT (objdump), finds each probe loop (fma_loop_avx512, fma_loop_avx2,
mul_add_loop_sse), takes its innermost loop (the shortest backward jump that encloses the
arithmetic) and counts the distinct registers its FMAs (for the SSE loop: its adds) write.
Each must be CHAINS; unrolling repeats registers and does not change the count."""
import re
import subprocess
import sys

LOOPS = {"fma_loop_avx512": r"vfmadd\w*ps", "fma_loop_avx2": r"vfmadd\w*ps", "mul_add_loop_sse": r"v?addps"}
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")


def functions(obj):
    text = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", obj], capture_output=True, text=True,
                          check=True).stdout
    out, name = {}, None
    for line in text.splitlines():
        m = FUNC.match(line)
        if m:
            name = m.group(1)
            out[name] = []
            continue
        m = INSN.match(line)
        if m and name is not None:
            out[name].append((int(m.group(1), 16), m.group(2), m.group(3).split("#")[0].strip()))
    return out


def innermost_loop_registers(insns, pattern):
    """Destinations of `pattern` instructions in the shortest backward-jump loop holding any."""
    best = None
    for addr, op, args in insns:
        if not op.startswith("j"):
            continue
        m = re.match(r"([0-9a-f]+)\b", args)
        if not m:
            continue
        target = int(m.group(1), 16)
        if target >= addr:
            continue
        body = [(o, a) for x, o, a in insns if target <= x <= addr and re.fullmatch(pattern, o)]
        if body and (best is None or addr - target < best[0]):
            best = (addr - target, body)
    if best is None:
        return None
    return {a.split(",")[-1].strip() for _, a in best[1]}


def main(obj, chains):
    found, failed = 0, False
    for name, insns in functions(obj).items():
        loop = next((k for k in LOOPS if k + "(" in name), None)
        if loop is None:
            continue
        found += 1
        regs = innermost_loop_registers(insns, LOOPS[loop])
        if regs is None:
            print(f"{name}: no loop with {LOOPS[loop]} found: FAIL")
            failed = True
            continue
        ok = len(regs) == chains
        failed |= not ok
        print(f"{name}: {len(regs)} accumulators in the loop ({', '.join(sorted(regs))}), "
              f"counted {chains}: {'ok' if ok else 'FAIL'}")
    if found != len(LOOPS):
        print(f"found {found} of the {len(LOOPS)} probe loops in {obj}: FAIL")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
