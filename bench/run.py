"""make bench: our dumps against the native client dumps of the same table, in one run.

Starts throwaway MariaDB and PostgreSQL servers (tests/servers.py), builds a
`courseware_studentmodule`-like table in each (bench/studentmodule.py), then
times each variant in its own subprocess and reads that process's peak RSS
(GNU time's %M, i.e. the kernel's maxrss of a process forked from a small one):

  native                  mariadb --batch --quick / psql \\copy ... CSV, to a file
  full                    panorama.py extract-and-load --force, no partitions
  by course_id            the same, partitioned by course_id (200 objects, indexed)
  by course_id (no index)  the same with the course_id index dropped for the run
  by student_id           partitioned by student_id (20,000 objects, indexed)
  full (S3), by course_id (S3)
                          the same into an aws lake: S3 objects (the whole table is one
                          multipart upload) and Glue partitions on a moto server process on
                          127.0.0.1 (--no-s3 skips them); compared with the local-lake
                          variant (target: at most 1.3x its time, same peak RSS)

Every output's row count is checked against the table, so a broken dump cannot
look fast. Results (medians of --repeat runs; RSS is the largest seen) are
printed as a markdown table and written to bench/out/results.md.

    python bench/run.py [--rows 1000000] [--engines mysql,postgresql] [--repeat 3]
                        [--also-rows 3000000] [--variants full,by student_id]
                        [--profile cprofile|py-spy] [--no-s3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import s3 as s3bench  # noqa: E402 - bench/ is this script's own directory
import studentmodule as sm  # noqa: E402

from tests.servers import DBServer, ServerError, start_mariadb, start_postgres  # noqa: E402

OUT = BENCH / "out"
STARTERS = {"mysql": start_mariadb, "postgresql": start_postgres}
DRIVERS = {"mysql": "pymysql", "postgresql": "psycopg2"}  # tests/servers.py connects with these
ENGINE_LABEL = {"mysql": "MariaDB", "postgresql": "PostgreSQL"}
RSS_LIMIT_MB = 200.0
RSS_FLAT_MB = 10.0  # "the same" at two sizes: within this many MB (or 10 %)
VARIANTS = (
    "native",
    "full",
    "by course_id",
    "by course_id (no index)",
    "by student_id",
    "full (S3)",
    "by course_id (S3)",
)
S3_VARIANTS = ("full (S3)", "by course_id (S3)")
TARGET_S3_SLOWDOWN = 1.3  # S3 variant's time / the local partitioned variant's
#: Partition field of each of our partitioned variants, and whether its index is there.
PARTITIONS = {
    "by course_id": ("course_id", True),
    "by course_id (no index)": ("course_id", False),
    "by student_id": ("student_id", True),
    "by course_id (S3)": ("course_id", True),
}
#: Targets: our rows/s over the native client's, per engine and variant.
TARGET_RATIO = {
    "mysql": {"full": 1.0, "by course_id": 0.8, "by course_id (no index)": 0.7, "by student_id": 0.5},
    "postgresql": {"full": 0.9, "by course_id": 0.8, "by course_id (no index)": 0.7, "by student_id": 0.5},
}
RUN_TIMEOUT = 3600.0


@dataclass
class Run:
    seconds: float
    rss_mb: float
    rows: int
    client_cpu: float = 0.0  # user+sys seconds of the measured process (and its children)
    server_cpu: float = 0.0  # user+sys seconds the database server spent meanwhile
    moto_cpu: float | None = None  # S3 variants: seconds the moto server (S3, Glue) spent meanwhile


@dataclass
class Result:
    engine: str
    variant: str
    rows: int
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def rss_mb(self) -> float:
        return max(r.rss_mb for r in self.runs)

    @property
    def client_cpu(self) -> float:
        return statistics.median(r.client_cpu for r in self.runs)

    @property
    def server_cpu(self) -> float:
        return statistics.median(r.server_cpu for r in self.runs)

    @property
    def moto_cpu(self) -> str:
        seen = [r.moto_cpu for r in self.runs if r.moto_cpu is not None]
        return f"{statistics.median(seen):.2f}" if seen else "-"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- running one measured process ---------------------------------------------


GNU_TIME = "/usr/bin/time"


def measure(
    cmd: list[str], *, env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path, cwd: Path
) -> tuple[float, float, float]:
    """Run `cmd`; return (wall seconds, peak RSS in MB, CPU seconds) of that process and its children.

    Not our own wait4 rusage: a child's ru_maxrss keeps the high-water mark of the
    memory it shared with us before exec, so every variant would report at least
    this script's size. GNU time forks from a ~1 MB process; without it we poll VmHWM.
    """
    rss_file = stderr.with_suffix(".rss")
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if use_time else cmd
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    peak_kb = 0
    with open(stderr, "wb") as err:
        start = time.perf_counter()
        # Own process group, so a timeout or Ctrl-C ends the measured command, not just GNU time.
        proc = subprocess.Popen(
            full, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
        timer = threading.Timer(RUN_TIMEOUT, _kill_group, (proc.pid,))
        timer.start()
        try:
            while not use_time and proc.poll() is None:
                peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
                time.sleep(0.02)
            _, status, usage = os.wait4(proc.pid, 0)  # CPU times are right; maxrss is not (see above)
            proc.returncode = os.waitstatus_to_exitcode(status)
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    if stdout:
        out.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"exit code {proc.returncode}: {' '.join(cmd[:3])} ...\n  " + "\n  ".join(tail))
    if use_time:
        peak_kb = int(rss_file.read_text().split()[-1])
    return seconds, peak_kb / 1024.0, usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds of a process, its threads and its reaped children (PostgreSQL backends)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n


def lake_rows(lake: Path) -> tuple[int, int]:
    """(data rows, objects) of the table's CSV objects in a local lake; one header line each."""
    rows = objects = 0
    for path in lake.rglob(f"{sm.TABLE}.csv"):
        if "_panorama" in path.relative_to(lake).parts:
            continue
        rows += count_lines(path) - 1
        objects += 1
    return rows, objects


# -- the variants ------------------------------------------------------------


def settings_file(
    engine: str, server: DBServer, lake: Path, partition: str | None, path: Path, s3: bool = False
) -> Path:
    types = sm.FIELD_TYPES[engine]
    table: dict[str, Any] = {"name": sm.TABLE, "fields": [{"name": c, "type": types[c]} for c in sm.COLUMNS]}
    if partition:
        table["partitions"] = {"partition_fields": [partition]}
    settings = {
        "datalake": s3bench.datalake() if s3 else {"type": "local", "path": str(lake)},
        "datasources": [
            {"type": engine, "name": f"bench_{engine}", **server.settings_dict(), "tables": [table]}
        ],
    }
    path.write_text(json.dumps(settings, indent=2) + "\n")  # JSON is YAML
    return path


class Bench:
    def __init__(
        self, engine: str, server: DBServer, work: Path, moto: s3bench.MotoServer | None = None
    ) -> None:
        self.engine = engine
        self.server = server
        self.work = work
        self.moto = moto  # the moto server of the S3 variants
        work.mkdir(parents=True, exist_ok=True)

    def ours_cmd(
        self, variant: str, command: tuple[str, ...] = ("extract-and-load",)
    ) -> tuple[list[str], Path]:
        partition = PARTITIONS[variant][0] if variant in PARTITIONS else None
        s3 = variant in S3_VARIANTS
        slug = ("s3-" if s3 else "") + (partition or "full")
        lake = self.work / f"lake-{slug}"
        settings = settings_file(
            self.engine, self.server, lake, partition, self.work / f"settings-{slug}.yaml", s3
        )
        cmd = [
            sys.executable,
            str(ROOT / "panorama.py"),
            "--settings",
            str(settings),
            *command,
            "-t",
            sm.TABLE,
        ]
        if command == ("extract-and-load",):
            cmd.append("--force")
        return cmd, lake

    def run_s3(self, variant: str, stderr: Path) -> tuple[float, float, float, int, float]:
        """An S3 variant on a fresh bucket and Glue database (its table registered first, untimed)."""
        assert self.moto
        endpoint = self.moto.endpoint
        env = s3bench.env(endpoint)
        s3bench.reset(endpoint)
        create, _ = self.ours_cmd(variant, ("create-datalake-tables",))
        subprocess.run(create, env=env, cwd=self.work, check=True, capture_output=True)
        cmd, _ = self.ours_cmd(variant)
        moto_cpu = process_cpu(self.moto.pid)
        seconds, rss, cpu = measure(
            cmd, env=env, stderr=stderr, stdout=self.work / "stdout.txt", cwd=self.work
        )
        moto_cpu = process_cpu(self.moto.pid) - moto_cpu
        rows, objects, partitions = s3bench.lake_rows(endpoint, sm.TABLE)
        want = (sm.COURSES, sm.COURSES) if "by course_id" in variant else (1, 0)
        if (objects, partitions) != want:
            raise RuntimeError(f"expected {want} objects and Glue partitions, found {objects}, {partitions}")
        s3bench.reset(endpoint)  # the moto server holds the objects in memory
        return seconds, rss, cpu, rows, moto_cpu

    def run(self, variant: str, expected: int) -> Run:
        """One measured run of a variant; its output is checked, then removed."""
        s = self.server
        stderr = self.work / "stderr.txt"
        server_cpu = process_cpu(s.pid)
        moto_cpu = None
        if variant == "native" and self.engine == "mysql":
            out = self.work / "native.tsv"
            cmd = [
                "mariadb",
                "--batch",
                "--quick",
                "--default-character-set=utf8mb4",
                "-h",
                s.host,
                "-P",
                str(s.port),
                "-u",
                s.user,
                s.database,
                "-e",
                f"SELECT * FROM {sm.TABLE}",
            ]
            env = {**os.environ, "MYSQL_PWD": s.password}
            seconds, rss, cpu = measure(cmd, env=env, stdout=out, stderr=stderr, cwd=self.work)
            rows = count_lines(out) - 1  # header line; --batch escapes newlines in values
            out.unlink()
        elif variant == "native":
            out = self.work / "native.csv"
            conninfo = f"host={s.host} port={s.port} user={s.user} dbname={s.database}"
            cmd = [
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                conninfo,
                "-c",
                f"\\copy (SELECT * FROM {sm.TABLE}) TO '{out}' CSV",
            ]
            env = {**os.environ, "PGPASSWORD": s.password}
            seconds, rss, cpu = measure(cmd, env=env, stderr=stderr, cwd=self.work)
            rows = count_lines(out)  # no header; the generated values hold no raw newline
            out.unlink()
        elif variant in S3_VARIANTS:
            seconds, rss, cpu, rows, moto_cpu = self.run_s3(variant, stderr)
        else:
            cmd, lake = self.ours_cmd(variant)
            shutil.rmtree(lake, ignore_errors=True)
            seconds, rss, cpu = measure(cmd, stderr=stderr, stdout=self.work / "stdout.txt", cwd=self.work)
            rows, objects = lake_rows(lake)
            want = sm.distinct(PARTITIONS[variant][0], expected) if variant in PARTITIONS else 1
            if objects != want:
                raise RuntimeError(f"expected {want} lake object(s), found {objects}")
            shutil.rmtree(lake, ignore_errors=True)
        if rows != expected:
            raise RuntimeError(f"output has {rows:,} rows, the table has {expected:,}")
        return Run(seconds, rss, rows, cpu, process_cpu(s.pid) - server_cpu, moto_cpu)

    def profile(self, variant: str, tool: str) -> str:
        """Run our variant once more under a profiler; return where its output went and a summary."""
        cmd, lake = self.ours_cmd(variant)
        shutil.rmtree(lake, ignore_errors=True)
        slug = f"{self.engine}-{variant.replace(' ', '_')}"
        if tool == "py-spy":
            # Collapsed stacks (flamegraph.pl / speedscope read them); --idle counts time
            # blocked on the server too, so the shares are shares of wall time.
            target = OUT / f"profile-{slug}.folded"
            cmd = [
                "py-spy",
                "record",
                "--idle",
                "--rate",
                "250",
                "--format",
                "raw",
                "-o",
                str(target),
                "--",
                *cmd,
            ]
            subprocess.run(
                cmd, cwd=self.work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            summary = f"{target.relative_to(ROOT)}:\n{summarize_folded(target)}"
        else:
            target = OUT / f"profile-{slug}.pstats"
            cmd = [cmd[0], "-m", "cProfile", "-o", str(target), *cmd[1:]]
            subprocess.run(
                cmd, cwd=self.work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            text = io.StringIO()
            pstats.Stats(str(target), stream=text).sort_stats("tottime").print_stats(12)
            lines = [ln for ln in text.getvalue().splitlines() if ln.strip()]
            start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
            summary = f"{target.relative_to(ROOT)} (top functions by own time):\n" + "\n".join(lines[start:])
        shutil.rmtree(lake, ignore_errors=True)
        return summary


def summarize_folded(path: Path, top: int = 12) -> str:
    """Shares of samples by innermost function (self) and by our own functions on the stack (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        # A frame reads "function (path:line)"; drop the line so a function's samples add up.
        frames = [re.sub(r":\d+\)$", ")", f.strip()) for f in stack.split(";")]
        frames = [f.replace(str(ROOT) + "/", "") for f in frames if not f.startswith("process ")]
        if frames:
            own[frames[-1]] += count
        for f in set(frames):
            if "panorama_kpi/" in f:
                inclusive[f] += count
    if not total:
        return "(no samples)"
    rows = [f"{total} samples; self:"]
    rows += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    rows += ["inclusive (panorama_kpi functions):"]
    rows += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    return "\n".join(rows)


# -- orchestration -----------------------------------------------------------


def bench_engine(
    engine: str, args: argparse.Namespace, work: Path, results: list[Result], notes: list[str]
) -> None:
    log(f"[{engine}] starting a throwaway {ENGINE_LABEL[engine]} server")
    server = STARTERS[engine](work / "servers")
    stack = contextlib.ExitStack()
    try:
        moto = None
        if args.s3:
            work.mkdir(parents=True, exist_ok=True)
            log(f"[{engine}] starting a moto server (S3 + Glue) on 127.0.0.1")
            moto = stack.enter_context(s3bench.moto_server(work / "moto.log"))
        conn = server.connect()
        bench = Bench(engine, server, work / engine, moto)
        loaded = 0
        for size in [args.rows, *([args.also_rows] if args.also_rows else [])]:
            started = time.perf_counter()
            log(f"[{engine}] building {sm.TABLE} with {size:,} rows")
            sm.build(conn, engine, size, start=loaded + 1)
            loaded = sm.count(conn)
            if loaded != size:
                raise RuntimeError(f"table has {loaded:,} rows, wanted {size:,}")
            log(f"[{engine}]   built in {time.perf_counter() - started:.1f} s")
            for variant in [v for v in args.variants if args.s3 or v not in S3_VARIANTS]:
                if variant in PARTITIONS:
                    sm.set_index(conn, engine, PARTITIONS[variant][0], PARTITIONS[variant][1])
                result = Result(engine, variant, size)
                results.append(result)
                for i in range(args.repeat):
                    try:
                        run = bench.run(variant, size)
                    except RuntimeError as exc:
                        result.error = str(exc)
                        log(f"[{engine}]   {variant}: FAILED: {exc}")
                        break
                    result.runs.append(run)
                    log(
                        f"[{engine}]   {variant} #{i + 1}: {run.seconds:.2f} s, "
                        f"{size / run.seconds:,.0f} rows/s, {run.rss_mb:.0f} MB, CPU client "
                        f"{run.client_cpu:.1f} s, server {run.server_cpu:.1f} s"
                    )
            sm.set_index(conn, engine, "course_id", True)
            if args.profile and size == args.rows:
                for variant in [v for v in args.variants if v != "native"]:
                    if variant in PARTITIONS:
                        sm.set_index(conn, engine, PARTITIONS[variant][0], PARTITIONS[variant][1])
                    log(f"[{engine}]   profiling {variant} with {args.profile}")
                    try:
                        notes.append(
                            f"{ENGINE_LABEL[engine]}, {variant}: {bench.profile(variant, args.profile)}"
                        )
                    except (subprocess.CalledProcessError, OSError) as exc:
                        notes.append(f"{ENGINE_LABEL[engine]}, {variant}: profiling failed: {exc}")
        conn.close()
    finally:
        stack.close()
        server.stop(cleanup=True)


def native_of(results: list[Result], r: Result) -> Result | None:
    for n in results:
        if n.engine == r.engine and n.rows == r.rows and n.variant == "native" and n.runs and not n.error:
            return n
    return None


def report(results: list[Result]) -> tuple[str, str, list[str]]:
    """The results table, the CPU table and the target verdicts."""
    lines = [
        "| engine | variant | rows | seconds | rows/s | peak RSS MB | ratio vs native |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    for r in results:
        if r.error or not r.runs:
            lines.append(f"| {ENGINE_LABEL[r.engine]} | {r.variant} | {r.rows:,} | FAILED | | | |")
            verdicts.append(
                f"FAIL {ENGINE_LABEL[r.engine]} {r.variant} at {r.rows:,} rows: "
                f"{(r.error or '').splitlines()[0]}"
            )
            continue
        native = native_of(results, r)
        ratio = r.rows_per_s / native.rows_per_s if native else None
        lines.append(
            f"| {ENGINE_LABEL[r.engine]} | {r.variant} | {r.rows:,} | {r.seconds:.2f} | {r.rows_per_s:,.0f} "
            f"| {r.rss_mb:.0f} | {f'{ratio:.2f}' if ratio is not None else '-'} |"
        )
        if r.variant == "native":
            continue
        what = f"{ENGINE_LABEL[r.engine]} {r.variant} at {r.rows:,} rows"
        target = TARGET_RATIO[r.engine].get(r.variant)  # S3 variants are held to the local lake's time
        if ratio is not None and target is not None:
            ok = "ok  " if ratio >= target else "MISS"
            verdicts.append(f"{ok} {what}: {ratio:.2f}x native rows/s (target >= {target}x)")
        ok = "ok  " if r.rss_mb < RSS_LIMIT_MB else "MISS"
        verdicts.append(f"{ok} {what}: peak RSS {r.rss_mb:.0f} MB (target < {RSS_LIMIT_MB:.0f} MB)")
        local_variant = r.variant.removesuffix(" (S3)")
        local = next(
            (
                x
                for x in results
                if (x.engine, x.rows, x.variant) == (r.engine, r.rows, local_variant)
                and x.runs
                and not x.error
            ),
            None,
        )
        if r.variant in S3_VARIANTS and local:
            slower = r.seconds / local.seconds
            ok = "ok  " if slower <= TARGET_S3_SLOWDOWN else "MISS"
            verdicts.append(
                f"{ok} {what}: {slower:.2f}x the local lake's time (target <= {TARGET_S3_SLOWDOWN}x), "
                f"peak RSS {r.rss_mb:.0f} MB vs {local.rss_mb:.0f} MB local"
            )
    cpu = [
        "| engine | variant | rows | wall s | client CPU s | server CPU s | moto CPU s |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(
            f"| {ENGINE_LABEL[r.engine]} | {r.variant} | {r.rows:,} | {r.seconds:.2f} | {r.client_cpu:.2f} "
            f"| {r.server_cpu:.2f} | {r.moto_cpu} |"
            for r in results
            if r.runs and not r.error
        ),
    ]
    sizes = sorted({r.rows for r in results})
    if len(sizes) == 2:
        for engine in dict.fromkeys(r.engine for r in results):
            for variant in [v for v in VARIANTS if v != "native"]:
                pair = [
                    r
                    for r in results
                    if r.engine == engine and r.variant == variant and r.runs and not r.error
                ]
                if len(pair) == 2:
                    small, big = sorted(pair, key=lambda r: r.rows)
                    flat = big.rss_mb - small.rss_mb <= max(RSS_FLAT_MB, 0.1 * small.rss_mb)
                    verdicts.append(
                        f"{'ok  ' if flat else 'MISS'} {ENGINE_LABEL[engine]} {variant}: peak RSS "
                        f"{small.rss_mb:.0f} MB at {small.rows:,} rows, {big.rss_mb:.0f} MB at {big.rows:,} rows"
                    )
    return "\n".join(lines), "\n".join(cpu), verdicts


def environment() -> str:
    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{version(['mariadb', '--version'])}; {version(['psql', '--version'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="table size (default 1,000,000)")
    parser.add_argument("--engines", default="mysql,postgresql", help="comma-separated: mysql, postgresql")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the median is reported")
    parser.add_argument(
        "--also-rows",
        type=int,
        default=0,
        help="grow the table to this size and measure again (is peak RSS flat?)",
    )
    parser.add_argument("--no-s3", dest="s3", action="store_false", help="skip the S3 (moto) variant")
    parser.add_argument(
        "--profile",
        choices=("cprofile", "py-spy"),
        help="also profile our two dumps once at --rows; output under bench/out/",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)} (ratios need native)",
    )
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.variants or any(v not in VARIANTS for v in args.variants):
        parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in STARTERS]
    if unknown or not engines:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(STARTERS)}")
    if args.also_rows and args.also_rows <= args.rows:
        parser.error("--also-rows must be larger than --rows")
    if args.repeat < 1 or args.rows < sm.COURSES:
        parser.error(f"--repeat must be >= 1 and --rows >= {sm.COURSES}")
    for engine in engines:
        driver = DRIVERS[engine]
        try:
            __import__(driver)
        except ImportError:
            parser.error(
                f"{driver} is not importable by {sys.executable}: run `make bench` (it installs "
                "the dev requirements into .venv) or pip install -r requirements-dev.txt"
            )
    if args.profile == "py-spy" and not shutil.which("py-spy"):
        parser.error("py-spy is not installed: pip install py-spy (or use --profile cprofile)")

    # A SIGTERM (e.g. make interrupted) must still stop the servers in the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    work = OUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    results: list[Result] = []
    notes: list[str] = []
    status = 0
    try:
        for engine in engines:
            try:
                bench_engine(engine, args, work / engine, results, notes)
            except (ServerError, RuntimeError) as exc:
                log(f"[{engine}] ERROR: {exc}")
                results.append(Result(engine, "setup", args.rows, error=str(exc)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started

    table, cpu, verdicts = report(results)
    text = "\n".join(
        [
            f"# panorama-kpi benchmark: {sm.TABLE}",
            "",
            f"{environment()}. Medians of {args.repeat} run(s); peak RSS is the largest seen. "
            "Ratio = our rows/s / the native client's rows/s on the same engine and size.",
            "",
            table,
            "",
            *(f"    {v}" for v in verdicts),
            "",
            f"Total bench time: {elapsed:.0f} s",
            "",
            "## Where the time goes",
            "",
            "CPU seconds (medians) of the measured process, of the database server and (S3 variants) "
            "of the moto server standing in for S3 and Glue during the run; all share the machine's CPUs.",
            "",
            cpu,
            *(["", "## Profiles", "", *(f"```\n{n}\n```" for n in notes)] if notes else []),
            "",
        ]
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.md").write_text(text)
    print(text)
    if any(r.error for r in results):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
