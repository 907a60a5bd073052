"""A dict/list/json workload for running python3 under an allocator.

Deterministic: prints the same summary under every allocator, so the output
can be compared with the run without LD_PRELOAD.
"""
import hashlib
import json
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
rng = random.Random(12345)
records = [{"id": i, "name": "user%06d" % i, "score": rng.random(),
            "tags": [rng.choice("abcdefgh") * rng.randint(1, 8) for _ in range(rng.randint(0, 6))]}
           for i in range(n)]
by_tag = {}
for r in records:
    for t in r["tags"]:
        by_tag.setdefault(t, []).append(r["id"])
text = json.dumps(records, sort_keys=True)
back = json.loads(text)
assert back == records
ranked = sorted(back, key=lambda r: (-r["score"], r["id"]))[:1000]
words = {}
for r in back:
    words[r["name"][-3:]] = words.get(r["name"][-3:], 0) + 1
digest = hashlib.sha256(text.encode()).hexdigest()
print("records", len(records), "tags", len(by_tag), "json bytes", len(text))
print("top", [r["id"] for r in ranked[:5]], "suffixes", len(words))
print("sha256", digest)
