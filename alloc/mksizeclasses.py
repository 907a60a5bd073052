#!/usr/bin/env python3
# mksizeclasses.py - generate alloc/sizeclass.c, the 66 small size classes.
#
# The rule is Go 1.15's (src/runtime/mksizeclasses.go), with 8 KiB pages and
# objects up to 32 KiB:
#
#   1. Walk sizes from 8 B to 32 KiB in steps of an alignment. The alignment
#      starts at 8 and is bumped when the size reaches a power of two: 16 from
#      16 B (16-byte alignment for SSE / the x86-64 ABI), size/8 from 128 B
#      (so rounding up wastes at most 12.5%), 256 from 2 KiB.
#   2. For each size, choose the fewest 8 KiB pages whose leftover tail
#      (span bytes % size) is at most 1/8 of the span bytes.
#   3. If the previous class has the same page count and the same number of
#      objects per span, the new size replaces it (the larger size is kept):
#      there is no point in two classes that pack a span identically.
#   4. Raise each class to the largest multiple of 128 B (Go's largeSizeDiv)
#      that still fits the same number of objects into the same span, when
#      that is larger than the size chosen above (e.g. 8448 B -> 9472 B,
#      6 objects in 7 pages).
#
# The result must equal the table in /work/shared/design.md ("Size classes"),
# which is asserted below. Then one step of our own:
#
#   5. Widen short spans: a span of fewer than MIN_OBJECTS (32) objects is
#      made k times as long, k the smallest that reaches 32 objects, as long
#      as the span stays within MAX_WIDE_PAGES (4 pages, 32 KiB); the class
#      sizes stay Go's. The mcache refills from a span it holds when the
#      current one runs dry, and a span of 8 objects (1 KiB on one page)
#      brings few: larson's 16 B-1 KiB churn refilled at 47 % of its mallocs,
#      finding ~1 object each time. callgrind, millions of instructions,
#      Go's spans -> widened (with the retired slots bounded by pages, mcache.h):
#      `larson 1 600000` 123.6 -> 113.7, `larson 8 30000` 80.2 -> 66.1,
#      `ring fifo 100000 1200000` 317.9 -> 260.4, `frag 50000` 21.5 -> 17.2.
#      Longer still (64 objects, 8 pages) saved a few % more instructions but
#      cost 15-30 % more peak RSS on the small multi-thread workloads (each
#      thread's current span per class is touched further). The tail waste
#      stays within 1/8 (k spans' tails, of k spans' bytes).
#
# Derived tables written alongside:
#   gcm_class_nelems[c]  = span bytes / size (objects per span)
#   gcm_class_divmul[c]  = (uint32)(~0u / size) + 1 (Go's divMagic since 1.17):
#                          (off * divmul) >> 32 == off / size for every offset
#                          inside the span (verified here and in the tests)
#   gcm_size_to_spanclass16[(n + 15) >> 4] = (smallest class with size >= max(n, 16)) << 1
#                          for n in 0..32768 - the span class of a malloc of n bytes,
#                          as malloc's fast path indexes the mcache by it; the 8 B
#                          class is never chosen here.
#
# Usage: python3 alloc/mksizeclasses.py          rewrite alloc/sizeclass.c
#        python3 alloc/mksizeclasses.py --check  exit 1 if the file differs
import os
import sys

PAGE_SIZE = 8192
MAX_SMALL = 32768
LARGE_SIZE_DIV = 128
NUM_CLASSES = 66  # small classes; class 0 ("large") is added in front
MIN_OBJECTS = 32  # step 5
MAX_WIDE_PAGES = 4

# design.md: bytes/object with pages per span (1 when not given in brackets).
EXPECTED = [
    (8, 1), (16, 1), (32, 1), (48, 1), (64, 1), (80, 1), (96, 1), (112, 1),
    (128, 1), (144, 1), (160, 1), (176, 1), (192, 1), (208, 1), (224, 1),
    (240, 1), (256, 1), (288, 1), (320, 1), (352, 1), (384, 1), (416, 1),
    (448, 1), (480, 1), (512, 1), (576, 1), (640, 1), (704, 1), (768, 1),
    (896, 1), (1024, 1), (1152, 1), (1280, 1), (1408, 2), (1536, 1),
    (1792, 2), (2048, 1), (2304, 2), (2688, 1), (3072, 3), (3200, 2),
    (3456, 3), (4096, 1), (4864, 3), (5376, 2), (6144, 3), (6528, 4),
    (6784, 5), (6912, 6), (8192, 1), (9472, 7), (9728, 6), (10240, 5),
    (10880, 4), (12288, 3), (13568, 5), (14336, 7), (16384, 2), (18432, 9),
    (19072, 7), (20480, 5), (21760, 8), (24576, 3), (27264, 10), (28672, 7),
    (32768, 4),
]

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "sizeclass.c")


def is_pow2(x):
    return x > 0 and (x & (x - 1)) == 0


def make_classes():
    """Return [(size, npages)] for classes 1..66 by the rule above."""
    classes = []
    align = 8
    size = align
    while size <= MAX_SMALL:
        if is_pow2(size):  # bump the alignment once in a while
            if size >= 2048:
                align = 256
            elif size >= 128:
                align = size // 8
            elif size >= 16:
                align = 16
        assert is_pow2(align)

        span = PAGE_SIZE
        while span % size > span // 8:
            span += PAGE_SIZE
        npages = span // PAGE_SIZE

        if classes:
            psize, pnpages = classes[-1]
            if pnpages == npages and span // psize == span // size:
                classes[-1] = (size, npages)
                size += align
                continue
        classes.append((size, npages))
        size += align

    raised = []
    for size, npages in classes:
        span = npages * PAGE_SIZE
        new_size = (span // (span // size)) & ~(LARGE_SIZE_DIV - 1)
        raised.append((max(size, new_size), npages))
    return raised


def widen(size, npages):
    """Step 5: (size, pages) with the span made long enough for MIN_OBJECTS."""
    k = 1
    while (k * npages * PAGE_SIZE) // size < MIN_OBJECTS and (k + 1) * npages <= MAX_WIDE_PAGES:
        k += 1
    return size, k * npages


def div_mul(size):
    return (0xFFFFFFFF // size + 1) & 0xFFFFFFFF


def check_div_mul(size, npages, mul):
    span = npages * PAGE_SIZE
    for off in range(span):
        if (off * mul) >> 32 != off // size:
            raise AssertionError("divmul fails for size %d at offset %d" % (size, off))


def build_tables():
    classes = make_classes()
    assert len(classes) == NUM_CLASSES, "expected %d classes, got %d" % (NUM_CLASSES, len(classes))
    assert classes == EXPECTED, "table differs from design.md:\n%s" % "\n".join(
        "  class %d: got %s, design.md %s" % (i + 1, g, e)
        for i, (g, e) in enumerate(zip(classes, EXPECTED)) if g != e)

    classes = [widen(size, npages) for size, npages in classes]
    sizes = [0] + [s for s, _ in classes]
    npages = [0] + [p for _, p in classes]
    nelems = [0] + [p * PAGE_SIZE // s for s, p in classes]
    divmul = [0] + [div_mul(s) for s, _ in classes]
    for c in range(1, len(sizes)):
        check_div_mul(sizes[c], npages[c], divmul[c])

    to_class16 = []
    for i in range(MAX_SMALL // 16 + 1):
        want = max(i * 16, 16)  # largest size that maps to index i, at least 16
        c = next(c for c in range(2, len(sizes)) if sizes[c] >= want)
        to_class16.append(c)
    return sizes, npages, nelems, divmul, to_class16


def fmt_array(decl, values, per_line, width):
    lines = ["%s = {" % decl]
    for i in range(0, len(values), per_line):
        chunk = values[i:i + per_line]
        lines.append("    " + " ".join(("%d," % v).rjust(width + 1) for v in chunk).rstrip())
    lines.append("};")
    return "\n".join(lines) + "\n"


def render():
    sizes, npages, nelems, divmul, to_class16 = build_tables()
    n = len(sizes)
    out = []
    out.append("""\
/*
 * sizeclass.c - GENERATED by alloc/mksizeclasses.py; DO NOT EDIT.
 *
 * Edit the generator and run `python3 alloc/mksizeclasses.py` instead; the
 * sizeclass unit test runs it with --check and fails if this file is stale.
 * The rule (Go 1.15's mksizeclasses.go, spans of few objects widened) is
 * described at the top of the script.
 *
 * class  bytes/obj  pages  objects  tail waste
""")
    for c in range(1, n):
        span = npages[c] * PAGE_SIZE
        out.append(" * %5d  %9d  %5d  %7d  %10d\n" % (c, sizes[c], npages[c], nelems[c], span % sizes[c]))
    out.append(" */\n")
    out.append('#include "alloc/sizeclass.h"\n\n')
    out.append("/* Bytes per object; class 0 (large) is 0. */\n")
    out.append(fmt_array("const uint32_t gcm_class_size[GCM_NUM_SIZE_CLASSES]", sizes, 10, 5))
    out.append("\n/* 8 KiB pages per span. */\n")
    out.append(fmt_array("const uint8_t gcm_class_npages[GCM_NUM_SIZE_CLASSES]", npages, 16, 2))
    out.append("\n/* Objects per span: npages * 8192 / size. */\n")
    out.append(fmt_array("const uint32_t gcm_class_nelems[GCM_NUM_SIZE_CLASSES]", nelems, 12, 4))
    out.append("\n/* (uint32)(~0u / size) + 1: (off * divmul) >> 32 == off / size inside a span. */\n")
    out.append(fmt_array("const uint32_t gcm_class_divmul[GCM_NUM_SIZE_CLASSES]", divmul, 6, 10))
    out.append("\n/* Index (size + 15) >> 4 for size 0..32768 -> span class (scan) of the smallest class\n"
               " * with bytes >= max(size, 16). */\n")
    out.append(fmt_array("const uint8_t gcm_size_to_spanclass16[GCM_MAX_SMALL / 16 + 1]",
                         [c << 1 for c in to_class16], 24, 3))
    return "".join(out)


def main(argv):
    check = False
    for arg in argv[1:]:
        if arg == "--check":
            check = True
        else:
            sys.stderr.write("usage: %s [--check]\n" % argv[0])
            return 2
    text = render()
    if check:
        try:
            with open(OUTPUT) as f:
                current = f.read()
        except OSError as e:
            sys.stderr.write("mksizeclasses: cannot read %s: %s\n" % (OUTPUT, e))
            return 1
        if current != text:
            sys.stderr.write("mksizeclasses: %s is stale; run python3 alloc/mksizeclasses.py\n" % OUTPUT)
            return 1
        return 0
    tmp = OUTPUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
