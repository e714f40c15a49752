#!/usr/bin/env python3
"""Issue 11's architecture counts for a checkout: scripts/architecture-counts.py [repo] (default: .)

`unsafe {` blocks, `libc::` references, `json!` sites in the kernel, files over 450 lines (in src/,
kernel/src/, kernel/display/src/), and module cycles: for each folder, the cycles among its children,
where a child depends on another if code in it (comments and unit-test modules left out) names the
other through `crate::` or `super::`."""
import os, re, sys
from collections import defaultdict
root = sys.argv[1] if len(sys.argv) > 1 else "."
def rs(d):
    for dp, _, fs in os.walk(os.path.join(root, d)):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.join(dp, f)
files = [f for d in ("src", "kernel/src", "kernel/display/src") for f in rs(d)]
text = {f: open(f).read() for f in files}
unsafe = sum(t.count("unsafe {") for t in text.values())
libc = {f: t.count("libc::") for f, t in text.items() if t.count("libc::")}
json = sum(text[f].count("json!") for f in files if "/kernel/src/" in f)
big = sorted((len(t.splitlines()), os.path.relpath(f, root)) for f, t in text.items() if len(t.splitlines()) > 450)
print(f"unsafe {{ blocks: {unsafe}")
print(f"libc:: references: {sum(libc.values())} in {len(libc)} files")
print(f"json! sites in kernel/src: {json}")
print(f"files over 450 lines: {len(big)}")
for n, f in big: print(f"  {n:5} {f}")

def modpath(f, base):
    rel = os.path.relpath(f, os.path.join(root, base))[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"): rel = rel[:-1]
    return rel
for base in ("src", "kernel/src"):
    mods = {}
    for f in rs(base):
        mods[tuple(modpath(f, base))] = f
    # inline `mod x { ... }` test modules are ignored; cfg(test) code counts like any other
    edges = defaultdict(set)
    for m, f in mods.items():
        t = text[f]
        # strip #[cfg(test)] mod tests { ... } at the end (unit tests)
        t = re.split(r"#\[cfg\(test\)\]\s*mod tests", t)[0]
        t = "\n".join(l for l in t.splitlines() if not l.lstrip().startswith("//"))
        refs = []
        for g in re.findall(r"crate((?:::\w+)+)", t):
            refs.append(g.strip(":").split("::"))
        for g in re.findall(r"\buse crate::\{([^}]*)\}", t):
            for part in g.split(","):
                part = part.strip().split("::")
                if part and part[0]: refs.append(part)
        for g in re.findall(r"\bsuper((?:::\w+)+)", t):
            refs.append(list(m[:-1]) + g.strip(":").split("::"))
        for r in refs:
            # longest module prefix
            best = None
            for k in range(len(r), 0, -1):
                if tuple(r[:k]) in mods: best = tuple(r[:k]); break
            if best and best != m and m[:len(best)] != best and best[:len(m)] != m:
                edges[m].add(best)
    # one graph per folder: an edge a -> b counts between the children of their deepest common
    # folder that contain a and b (a's and b's ancestors there)
    graphs = defaultdict(lambda: defaultdict(set))
    for a, bs in edges.items():
        for b in bs:
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]: k += 1
            if k < len(a) and k < len(b):
                graphs[a[:k]][a[:k+1]].add(b[:k+1])
    # sibling graphs inside folders
    def sccs(g):
        idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
        nodes = set(g) | {b for bs in g.values() for b in bs}
        def visit(v):
            idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
            for w in g.get(v, ()):
                if w not in idx: visit(w); low[v] = min(low[v], low[w])
                elif w in on: low[v] = min(low[v], idx[w])
            if low[v] == idx[v]:
                comp = []
                while True:
                    w = st.pop(); on.discard(w); comp.append(w)
                    if w == v: break
                if len(comp) > 1: out.append(sorted(comp))
        for v in sorted(nodes):
            if v not in idx: visit(v)
        return out
    sys.setrecursionlimit(10000)
    cyc = []
    for folder, g in sorted(graphs.items()):
        for comp in sccs(g):
            cyc.append(["::".join(m) for m in comp])
    print(f"{base}: module cycles: {len(cyc)} {cyc}")
