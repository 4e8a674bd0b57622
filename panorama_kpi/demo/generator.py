"""Writing the demo database: one seeded random stream, timestamps offset from `now`."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from panorama_kpi.demo.schema import (
    BLOCKS,
    COURSE_TITLES,
    FIRST,
    HOSTILE,
    INDEXES,
    LAST,
    ORGS,
    SCHEMA,
    SLUG,
    SUBJECTS,
    _td,
    course_key,
    fields,
)


class _Gen:
    """All the state one generation needs; methods yield each table's rows in id order."""

    def __init__(self, seed: int, scale: float, now: dt.datetime) -> None:
        self.rng = random.Random(seed)
        self.r = self.rng.random
        self.now = now
        self.n_users = max(50, round(20_000 * scale))
        self.n_courses = max(5, round(60 * scale))
        self.courses: list[dict[str, Any]] = []
        self.enrollments: list[tuple[int, int, int, float, str, int]] = []
        self.names: dict[int, str] = {}
        self.joined: list[float] = [0.0]
        #: enrollment index -> (earned, first activity age, last activity age)
        self.activity: dict[int, list[float]] = {}

    def ts(self, age_seconds: float) -> str:
        """The time `age_seconds` before now, as Django stores it in SQLite."""
        return (self.now - _td(0, age_seconds)).isoformat(" ", "microseconds")

    def hex(self, bits: int = 128) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def hostile(self, p: float, normal: str) -> str:
        return self.rng.choice(HOSTILE) if self.r() < p else normal

    def users(self) -> Iterator[tuple[Any, ...]]:
        r, rng = self.r, self.rng
        n_staff = 1 + self.n_courses // 2
        for uid in range(1, self.n_users + 1):
            age = r() * 730 * 86400
            self.joined.append(age)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if r() < 0.01:
                first = rng.choice(["🙂 Smiley", 'Robert "Bobby"', "Back\\slash", "Tab\tName"])
            self.names[uid] = f"{first} {last}"
            slug = "".join(rng.choice(SLUG) for _ in range(6))
            username = f"{slug}{uid}" if r() > 0.02 else f"{slug}.{uid}+test@x"
            salt = base64.b64encode(rng.getrandbits(96).to_bytes(12, "big")).decode()
            digest = base64.b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode()
            yield (
                uid,
                f"pbkdf2_sha256$600000${salt}${digest}",
                None if r() < 0.12 else self.ts(age * r()),
                int(uid == 1),
                username,
                first,
                last,
                f"{slug}{uid}@example.com",
                int(uid <= n_staff),
                int(r() < 0.97),
                self.ts(age),
            )

    def profiles(self) -> Iterator[tuple[Any, ...]]:
        r, rng = self.r, self.rng
        for uid in range(1, self.n_users + 1):
            yield (
                uid,
                self.names[uid],
                rng.choice(["", "{}", '{"session_id": null}']),
                "course.xml",
                "",
                "",
                None if r() < 0.3 else rng.randint(1950, 2008),
                rng.choice([None, "", "m", "f", "o"]),
                rng.choice([None, "", "hs", "b", "m", "p", "none"]),
                None if r() < 0.5 else self.hostile(0.1, f"{rng.randint(1, 999)} Main St\nApt {uid}"),
                self.hostile(0.05, rng.choice(["Valencia", "São Paulo", "Zürich", "", "Lagos"])),
                rng.choice(["ES", "BR", "CH", "NG", "US", "", "IN"]),
                self.hostile(0.2, "Learn something new") if r() < 0.6 else None,
                1,
                self.hostile(0.05, "") if r() < 0.3 else None,
                None if r() < 0.9 else self.ts(self.joined[uid] * r()),
                uid,
            )

    def course_rows(self) -> Iterator[tuple[Any, ...]]:
        r, rng = self.r, self.rng
        day = 86400
        for i in range(self.n_courses):
            key = course_key(i)
            org = key.split(":")[-1].split("+")[0].split("/")[0]
            start = (620 * r() - 30) * day  # age: a few courses start in the future
            end = start - (60 + 120 * r()) * day
            if i == 0:  # one course always running, whatever the scale
                start, end = 40.0 * day, -80.0 * day
            enroll_start = max(start, 0) + 30 * day
            blocks = []
            for kind, count in BLOCKS.items():
                for _ in range(count):
                    block_id = self.hex()
                    if key.startswith("course-v1:"):
                        module_id = f"{key.replace('course-v1:', 'block-v1:')}+type@{kind}+block@{block_id}"
                    else:  # the old location format of slash-separated course ids
                        module_id = f"i4x://{key.rsplit('/', 1)[0]}/{kind}/{block_id}"
                    blocks.append(
                        (
                            kind,
                            module_id,
                            block_id,
                            float(rng.choice([1, 2, 3, 5])) if kind == "problem" else None,
                        )
                    )
            course: dict[str, Any] = {
                "key": key,
                "org": org,
                "start": start,
                "end": end,
                "enroll_start": enroll_start,
                "live": end < 0 < start,
                "blocks": blocks,
                "total": sum(b[3] for b in blocks if b[3]),
                "pass": rng.choice([0.5, 0.6, 0.7]),
                "version": self.hex(96),
                "policy": base64.b64encode(self.hex(160).encode()[:21]).decode(),
                "modified": enroll_start + 5 * day * r(),
                "popularity": r() ** 2 + 0.02,
            }
            self.courses.append(course)
            subject = (i // len(ORGS)) % len(SUBJECTS)
            title = "Open edX Demo Course" if i == 1 else COURSE_TITLES[subject]
            yield (
                self.ts(enroll_start + 10 * day),
                self.ts(course["modified"]),
                16,
                key,
                f"location:{key}+course+course",
                title,
                key.split("+")[1] if "+" in key else "DemoX",
                org,
                self.ts(start),
                None if r() < 0.1 else self.ts(end),
                None,
                "/asset/course_image.jpg",
                None,
                None,
                "end",
                0,
                1,
                int(r() < 0.8),
                "",
                "",
                course["pass"],
                None,
                1,
                0,
                "[]",
                self.ts(enroll_start),
                None if r() < 0.5 else self.ts(end),
                None,
                0,
                None,
                None,
                "both",
                None,
                "3 hours/week",
                self.hostile(0.3, "A course about things."),
                org,
                int(r() < 0.4),
                None,
                1,
                rng.choice(["en", "es", "pt", None]),
                None,
            )

    def enrollment_rows(self) -> Iterator[tuple[Any, ...]]:
        r, rng = self.r, self.rng
        weights = [c["popularity"] for c in self.courses]
        per_user = [1, 2, 3, 4, 5, 6, 7, 8]
        per_user_w = [0.28, 0.25, 0.17, 0.11, 0.07, 0.05, 0.04, 0.03]
        eid = 0
        for uid in range(1, self.n_users + 1):
            k = rng.choices(per_user, per_user_w)[0]
            for ci in dict.fromkeys(rng.choices(range(self.n_courses), weights, k=k)):
                eid += 1
                course = self.courses[ci]
                opened = min(self.joined[uid], course["enroll_start"])  # enrolment possible since
                closes = max(course["end"], 0.0)
                # most enrol while the course runs; some later, in the archived course
                age = closes + (opened - closes) * r() if opened > closes and r() < 0.85 else opened * r()
                mode = rng.choices(["audit", "verified", "honor"], [0.6, 0.3, 0.1])[0]
                active = int(r() < 0.92)
                self.enrollments.append((eid, uid, ci, age, mode, active))
                yield (eid, course["key"], self.ts(age), active, mode, uid)

    def studentmodule_rows(self) -> Iterator[tuple[Any, ...]]:
        r, rng, ts = self.r, self.rng, self.ts
        speeds = ["1.0", "1.25", "1.5", "2.0"]
        sid = 0
        recent = 3 * 3600
        for n, (_eid, uid, ci, age, _mode, _active) in enumerate(self.enrollments):
            course = self.courses[ci]
            blocks, key, live = course["blocks"], course["key"], course["live"]
            # Activity between the later of enrolment and start, and the earlier of the end and now.
            # Only running courses have activity in the last day: the incremental window has a few
            # partitions to reload, not all of them.
            newest = 0.0 if live else max(course["end"], 86400.0)
            age = min(age, course["start"])
            x = r()
            if x < 0.25 or age <= newest:
                continue
            heavy = x > 0.9  # most of the course, good grades; the others look at a few blocks
            k = rng.randint(30, len(blocks)) if heavy else 1 + int(r() * 8)
            exponent = 0.3 if heavy else 1.5
            earned, first, last = 0.0, 0.0, 1e12
            for b in rng.sample(range(len(blocks)), k):
                kind, module_id, block_id, max_grade = blocks[b]
                sid += 1
                created = newest + (age - newest) * r()
                if live and r() < 0.15:  # activity within the last hours, for the incremental window
                    modified = r() * recent
                    created = max(created, modified)
                elif r() < 0.4:  # never touched after its creation
                    modified = created
                else:
                    modified = newest + (created - newest) * r()
                created_text = ts(created)
                modified_text = created_text if modified == created else ts(modified)
                grade = None
                if kind == "problem":
                    if r() < 0.85:
                        grade = float(round(max_grade * r() ** exponent))
                        earned += grade
                    state = self.problem_state(block_id, 1 + int(r() * 3), modified_text)
                elif kind == "video":
                    state = (
                        f'{{"saved_video_position": "00:{int(r() * 60):02d}:{int(r() * 60):02d}", '
                        f'"speed": {speeds[int(r() * 4)]}, "auto_advance": false, '
                        '"transcript_language": "en", "youtube_is_available": true}'
                    )
                elif kind == "openassessment":
                    text = self.hostile(0.3, "My essay about the topic.")
                    saved = json.dumps({"parts": [{"text": text}]}, ensure_ascii=False)
                    state = json.dumps(
                        {"submission_uuid": self.hex(), "has_saved": True, "saved_response": saved},
                        ensure_ascii=False,
                    )
                else:
                    state = f'{{"position": {1 + int(r() * 12)}, "last_visited": "{module_id}"}}'
                if created > first:
                    first = created
                if modified < last:
                    last = modified
                yield (
                    sid,
                    kind,
                    module_id,
                    key,
                    state,
                    grade,
                    max_grade if grade is not None else None,
                    "na",
                    created_text,
                    modified_text,
                    uid,
                )
            self.activity[n] = [earned, first, last]

    def problem_state(self, block_id: str, attempts: int, submitted: str) -> str:
        r, rng = self.r, self.rng
        part = f"{block_id}_2_1"
        if r() < 0.03:  # free-text answer with hostile content; now and then pretty-printed (raw newlines)
            doc = {
                "correct_map": {part: {"correctness": "incorrect", "npoints": None, "msg": ""}},
                "attempts": attempts,
                "done": True,
                "student_answers": {part: rng.choice(HOSTILE) + " " + rng.choice(HOSTILE)},
            }
            return json.dumps(doc, ensure_ascii=False, indent=1 if r() < 0.2 else None)
        correct = "correct" if r() < 0.6 else "incorrect"
        return (
            f'{{"correct_map": {{"{part}": {{"correctness": "{correct}", "npoints": null, "msg": "", '
            f'"hint": "", "hintmode": null, "queuestate": null}}}}, "input_state": {{"{part}": {{}}}}, '
            f'"last_submission_time": "{submitted[:10]}T{submitted[11:19]}Z", "attempts": {attempts}, '
            f'"seed": 1, "done": true, "student_answers": {{"{part}": "choice_{int(r() * 4)}"}}}}'
        )

    def grade_rows(self) -> Iterator[tuple[Any, ...]]:
        self.passed: list[tuple[int, float, float]] = []
        for gid, (n, (earned, first, last)) in enumerate(sorted(self.activity.items()), 1):
            _eid, uid, ci, _age, _mode, _active = self.enrollments[n]
            course = self.courses[ci]
            percent = round(earned / course["total"], 2)
            passed = percent >= course["pass"]
            if passed:
                self.passed.append((n, percent, last))
            yield (
                self.ts(first),
                self.ts(last),
                gid,
                uid,
                course["key"],
                self.ts(course["modified"]),
                course["version"],
                course["policy"],
                percent,
                "Pass" if passed else "",
                self.ts(last) if passed else None,
            )

    def certificate_rows(self) -> Iterator[tuple[Any, ...]]:
        r = self.r
        for cid, (n, percent, last) in enumerate(self.passed, 1):
            _eid, uid, ci, _age, mode, _active = self.enrollments[n]
            if mode == "audit":
                status, error = "audit_passing", ""
            else:
                x = r()
                status = "downloadable" if x < 0.93 else "generating" if x < 0.97 else "error"
                error = self.hostile(0.5, 'Timeout: "render" failed\nretry') if status == "error" else ""
            created = last * r()
            yield (
                cid,
                self.courses[ci]["key"],
                self.hex(),
                self.hex(),
                "",
                str(percent),
                self.hex(),
                int(r() < 0.05),
                status,
                mode,
                self.names[uid],
                self.ts(created),
                self.ts(created * r()),
                error,
                uid,
            )

    def role_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        n_staff = 1 + self.n_courses // 2
        rid = 0
        for course in self.courses:
            roles = ["instructor", "staff", rng.choice(["staff", "beta_testers", "data_researcher"])]
            for role, uid in zip(roles, rng.sample(range(1, n_staff + 1), len(roles)), strict=True):
                rid += 1
                yield (rid, course["org"], course["key"], role, uid)
        for org in ORGS[:2]:  # org-wide roles: Open edX stores their course_id as ''
            rid += 1
            yield (rid, org, "", "org_course_creator_group" if org == "Org" else "library_user", 1)


def generate(
    path: Path, seed: int = 42, scale: float = 1.0, now: dt.datetime | None = None
) -> dict[str, int]:
    """Write the demo database at `path` (replacing it); return the row count of each table.

    `now` (default: the current UTC time) anchors every timestamp, so the same
    seed, scale and `now` give identical content.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    if now is None:
        now = dt.datetime.now(dt.UTC)
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    gen = _Gen(seed, scale, now)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    counts: dict[str, int] = {}
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"PRAGMA application_id={stamp(seed, scale)}")
        conn.execute(f"PRAGMA user_version={int(now.replace(tzinfo=dt.UTC).timestamp() // 60)}")
        conn.execute("BEGIN")
        for table in SCHEMA:
            cols = ", ".join(f'"{name}" {kind}' for name, kind in fields(table))
            conn.execute(f'CREATE TABLE "{table}" ({cols})')
        plan: list[tuple[str, Iterator[tuple[Any, ...]]]] = [
            ("auth_user", gen.users()),
            ("auth_userprofile", gen.profiles()),
            ("course_overviews_courseoverview", gen.course_rows()),
            ("student_courseenrollment", gen.enrollment_rows()),
            ("courseware_studentmodule", gen.studentmodule_rows()),
            ("grades_persistentcoursegrade", gen.grade_rows()),
            ("certificates_generatedcertificate", gen.certificate_rows()),
            ("student_courseaccessrole", gen.role_rows()),
        ]
        for table, rows in plan:
            marks = ", ".join("?" for _ in fields(table))
            before = conn.total_changes
            conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
            counts[table] = conn.total_changes - before
        for table in SCHEMA:  # after the inserts: building an index once is faster than growing it
            conn.execute(f'CREATE UNIQUE INDEX "{table}_id" ON "{table}" ("id")')
        for table, columns in INDEXES.items():
            for col in columns:
                conn.execute(f'CREATE INDEX "{table}_{col}" ON "{table}" ("{col}")')
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    tmp.replace(path)
    return counts


def stamp(seed: int, scale: float) -> int:
    """What generated a database (kept in PRAGMA application_id): this module's code, seed and scale."""
    code = Path(__file__).read_bytes()
    return zlib.crc32(f"{seed}:{scale!r}:".encode() + code) & 0x7FFFFFFF


def is_fresh(path: Path, seed: int, scale: float, max_age: dt.timedelta = dt.timedelta(hours=1)) -> bool:
    """True if `path` was generated by this code with this seed and scale, less than `max_age` ago."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
        try:
            (app_id,) = conn.execute("PRAGMA application_id").fetchone()
            (minutes,) = conn.execute("PRAGMA user_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    age = dt.datetime.now(dt.UTC).timestamp() - minutes * 60
    return bool(app_id == stamp(seed, scale) and 0 <= age < max_age.total_seconds())
