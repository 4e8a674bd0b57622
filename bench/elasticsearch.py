"""make bench, Elasticsearch variant: `extract-and-load --force` of a
studentmodule-like index served by the test stand-in (tests/es_standin.py),
at two sizes, reporting rows/s and peak RSS. Two shapes: the whole index as one
object through a point in time (8.13), and one object per course_id through one
scroll cut into objects as it streams (7.10, no point in time).

The stand-in runs in its own process and builds each document from its
position when a page asks for it, so it holds no index in memory and the
measured process is ours alone. Its pure-Python JSON encoding shares the two
cores with the client, so rows/s is a floor, not a statement about a real
cluster; what this checks is that memory stays flat as the index grows.

    python bench/elasticsearch.py [--docs 200000,600000] [--variants "full,by course_id"]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from run import RSS_FLAT_MB, RSS_LIMIT_MB, count_lines, log, measure  # noqa: E402

TABLE = "courseware_studentmodule"
#: variant -> (server version, partition field or None)
VARIANTS = {"full": ("8.13.4", None), "by course_id": ("7.10.2", "course_id")}
FIELDS = [
    ("_id", "keyword"),
    ("module_type", "keyword"),
    ("module_id", "keyword"),
    ("course_id", "keyword"),
    ("state", "text"),
    ("grade", "double"),
    ("max_grade", "double"),
    ("created", "date"),
    ("modified", "date"),
    ("student_id", "long"),
]


class Documents:
    """A read-only sequence of (id, _source), each built from its position."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, pos: Any) -> Any:
        if isinstance(pos, slice):
            return self  # immutable: a snapshot is the sequence itself
        if not 0 <= pos < self.n:
            raise IndexError(pos)
        course = (pos // 64) % 200
        state = {
            "attempts": pos % 7,
            "seed": pos % 1000,
            "done": pos % 3 == 0,
            "input_state": {f"{pos:08x}_2_1": {"answer": "choice_" + str(pos % 4), "correctness": "correct"}},
        }
        return f"sm-{pos}", {
            "module_type": "problem",
            "module_id": f"block-v1:Org+C{course}+2024+type@problem+block@{pos % 5000:032x}",
            "course_id": f"course-v1:Org+C{course}+2024",
            "state": json.dumps(state),
            "grade": float(pos % 5),
            "max_grade": 5.0,
            "created": 1704067200000 + pos * 1000,
            "modified": f"2024-01-{1 + pos % 28:02d}T{pos % 24:02d}:00:00.123+02:00",
            "student_id": pos % 50000,
        }

    def __iter__(self) -> Any:
        return (self[i] for i in range(self.n))


def serve(docs: int, version: str, port_file: Path) -> None:
    """The stand-in's process: serve until killed."""
    from tests.es_standin import Cluster, ESStandin, Index

    cluster = Cluster(version)
    mapping = {name: {"type": kind} for name, kind in FIELDS if name != "_id"}
    cluster.indices[TABLE] = Index(mapping, Documents(docs))  # type: ignore[arg-type]
    with ESStandin(cluster) as es:
        port_file.write_text(es.url)
        while True:
            time.sleep(3600)


def settings(url: str, lake: Path, path: Path, partition: str | None) -> Path:
    fields = "\n".join(f"    - {{name: {n}, type: {t}}}" for n, t in FIELDS)
    if partition:
        fields += f"\n    partitions: {{partition_fields: [{partition}]}}"
    path.write_text(
        f"""datalake: {{type: local, path: {lake}, base_prefix: bench}}
datasources:
- type: elasticsearch
  name: es
  hosts: [{url}]
  tables:
  - name: {TABLE}
    fields:
{fields}
""",
        encoding="utf-8",
    )
    return path


def bench(docs: int, variant: str, work: Path) -> dict[str, Any]:
    version, partition = VARIANTS[variant]
    work = work / variant.replace(" ", "-")
    work.mkdir(exist_ok=True)
    port_file = work / f"es-{docs}.url"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(docs), "--version", version, "--port-file", str(port_file)],
        cwd=ROOT,
    )
    try:
        for _ in range(300):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.1)
        lake = work / f"lake-{docs}"
        path = settings(port_file.read_text(), lake, work / f"settings-{docs}.yaml", partition)
        cmd = [
            sys.executable,
            str(ROOT / "panorama.py"),
            "--settings",
            str(path),
            "extract-and-load",
            "--all",
            "--force",
        ]
        seconds, rss, _cpu = measure(cmd, stderr=work / f"es-{docs}.err", cwd=ROOT)
        objects = sorted((lake / "bench" / TABLE).rglob(f"{TABLE}.csv"))
        rows = sum(count_lines(o) - 1 for o in objects)
    finally:
        server.kill()  # the process started above, by its PID
        server.wait()
    if rows != docs or len(objects) != (200 if partition else 1):
        raise SystemExit(
            f"Elasticsearch bench: {rows} rows in {len(objects)} object(s) in the lake, {docs} documents in the index"
        )
    return {
        "variant": variant,
        "version": version,
        "docs": docs,
        "objects": len(objects),
        "seconds": seconds,
        "rows_per_s": docs / seconds,
        "rss_mb": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default="200000,600000")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--version", default="8.13.4", help=argparse.SUPPRESS)  # of a --serve process
    parser.add_argument("--serve", type=int)
    parser.add_argument("--port-file", type=Path)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.version, args.port_file)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="panorama-es-bench-") as tmp:
        for variant in variants:
            for n in (int(x) for x in args.docs.split(",")):
                log(f"Elasticsearch {VARIANTS[variant][0]} stand-in, {variant}: {n:,} documents")
                results.append(bench(n, variant, Path(tmp)))
    lines = [
        "variant | server (stand-in) | documents | objects | seconds | rows/s | peak RSS MB",
        "---|---|---:|---:|---:|---:|---:",
    ]
    for r in results:
        lines.append(
            f"{r['variant']} | {r['version']} | {r['docs']:,} | {r['objects']} | {r['seconds']:.2f} | "
            f"{r['rows_per_s']:,.0f} | {r['rss_mb']:.0f}"
        )
    print("\n".join(lines))
    problems = []
    for variant in variants:
        peak = [r["rss_mb"] for r in results if r["variant"] == variant]
        if max(peak) >= RSS_LIMIT_MB:
            problems.append(f"{variant}: peak RSS {max(peak):.0f} MB >= {RSS_LIMIT_MB:.0f} MB")
        if max(peak) - min(peak) > max(RSS_FLAT_MB, 0.1 * min(peak)):
            problems.append(f"{variant}: peak RSS not flat: {min(peak):.0f} -> {max(peak):.0f} MB")
    for p in problems:
        print(f"FAIL: {p}")
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "elasticsearch.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
