"""The demo database's tables, columns and the vocabularies rows are drawn from."""

from __future__ import annotations

import datetime as dt

#: Tables and columns as panorama-elt's Open edX example declares them (MySQL type names).
SCHEMA: dict[str, str] = {
    "auth_user": "id:int password:varchar last_login:datetime is_superuser:tinyint username:varchar "
    "first_name:varchar last_name:varchar email:varchar is_staff:tinyint is_active:tinyint date_joined:datetime",
    "auth_userprofile": "id:int name:varchar meta:longtext courseware:varchar language:varchar "
    "location:varchar year_of_birth:int gender:varchar level_of_education:varchar mailing_address:longtext "
    "city:longtext country:varchar goals:longtext allow_certificate:tinyint bio:varchar "
    "profile_image_uploaded_at:datetime user_id:int",
    "course_overviews_courseoverview": "created:datetime modified:datetime version:int id:varchar "
    "_location:varchar display_name:longtext display_number_with_default:longtext "
    "display_org_with_default:longtext start:datetime end:datetime advertised_start:longtext "
    "course_image_url:longtext social_sharing_url:longtext end_of_course_survey_url:longtext "
    "certificates_display_behavior:longtext certificates_show_before_end:tinyint "
    "cert_html_view_enabled:tinyint has_any_active_web_certificate:tinyint cert_name_short:longtext "
    "cert_name_long:longtext lowest_passing_grade:decimal days_early_for_beta:double "
    "mobile_available:tinyint visible_to_staff_only:tinyint _pre_requisite_courses_json:longtext "
    "enrollment_start:datetime enrollment_end:datetime enrollment_domain:longtext invitation_only:tinyint "
    "max_student_enrollments_allowed:int announcement:datetime catalog_visibility:longtext "
    "course_video_url:longtext effort:longtext short_description:longtext org:longtext self_paced:tinyint "
    "marketing_url:longtext eligible_for_financial_aid:tinyint language:longtext "
    "certificate_available_date:datetime",
    "student_courseenrollment": "id:int course_id:varchar created:datetime is_active:tinyint mode:varchar "
    "user_id:int",
    "courseware_studentmodule": "id:int module_type:varchar module_id:varchar course_id:varchar "
    "state:longtext grade:double max_grade:double done:varchar created:datetime modified:datetime "
    "student_id:int",
    "grades_persistentcoursegrade": "created:datetime modified:datetime id:bigint user_id:int "
    "course_id:varchar course_edited_timestamp:datetime course_version:varchar grading_policy_hash:varchar "
    "percent_grade:double letter_grade:varchar passed_timestamp:datetime",
    "certificates_generatedcertificate": "id:int course_id:varchar verify_uuid:varchar download_uuid:varchar "
    "download_url:varchar grade:varchar key:varchar distinction:tinyint status:varchar mode:varchar "
    "name:varchar created_date:datetime modified_date:datetime error_reason:varchar user_id:int",
    "student_courseaccessrole": "id:int org:varchar course_id:varchar role:varchar user_id:int",
}

#: Indexes (besides the unique id) on the columns the extract filters on, as Open edX has them.
INDEXES = {
    "courseware_studentmodule": ["course_id", "modified"],
}

#: Text that trips naive CSV writers and readers; used now and then in free-text fields.
HOSTILE = [
    'He said "hello", then left',
    "O'Brien's \"quoted\" answer",
    "C:\\Users\\student\\answer.txt",
    "line one\nline two",
    "windows\r\nline ending",
    "tab\tseparated, with a comma",
    "trailing backslash \\",
    "literal \\n is not a newline",
    "\\N",
    "emoji 🎓🚀 and accents: café, niño, Straße",
    "中文字符 and עברית",
    "",
    "NULL",
    "__HIVE_DEFAULT_PARTITION__",
]

FIRST = [
    "Ana",
    "José",
    "Zoë",
    "Renée",
    "Li",
    "Mohammed",
    "Olga",
    "Tomás",
    "Priya",
    "Kwame",
    "Sven",
    "María José",
    "Nguyễn",
    "Aiko",
    "Jean-Luc",
    "Fatima",
    "Chloé",
    "Ömer",
    "Sipho",
    "Lucía",
]
LAST = [
    "García",
    "O'Brien",
    "Smith",
    "Müller",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Yamamoto",
    "Silva",
    "van der Berg",
    "Núñez",
    "Okafor",
    "Ivanova",
    "D'Angelo",
    "Hernández",
    "Chen",
    "Larsen",
    "Patel",
]
SLUG = "abcdefghijklmnopqrstuvwxyz"
ORGS = ["Org", "MITx", "HarvardX", "UPValenciaX", "Aulasneo", "edX"]
SUBJECTS = [
    "CS101",
    "DS200",
    "MATH110",
    "PHYS7.01x",
    "BIO-150",
    "ECON_201",
    "HIST~12",
    "ART5",
    "STAT110",
    "ML300",
]
RUNS = ["2023_T1", "2023_T3", "2024_T1", "2024_T2", "2025_T1", "3T2025"]
#: Course names by subject (same order as SUBJECTS); some are hostile text.
COURSE_TITLES = [
    "Introduction to Computer Science",
    'Data "Science" for Everyone',
    "Álgebra lineal",
    "Physics \\ Mechanics",
    "Biologie : l'essentiel",
    "Economía política",
    "History of the\nMediterranean",
    "Art, Design and Society",
    "Statistics 🎲 & Probability",
    "Machine Learning",
]
#: module_type -> how many blocks of it one course has; problems carry a fixed max_grade.
BLOCKS = {"course": 1, "chapter": 5, "sequential": 10, "video": 10, "problem": 20, "openassessment": 2}


def course_key(i: int) -> str:
    """Stable course ids (independent of the seed); index 1 is an old slash-separated key."""
    if i == 1:
        return "edX/DemoX/Demo_Course"
    org = ORGS[i % len(ORGS)]
    subject = SUBJECTS[(i // len(ORGS)) % len(SUBJECTS)]
    cycle = len(ORGS) * len(SUBJECTS)  # (org, subject) pairs are unique within a cycle
    run = RUNS[(i + i // len(ORGS)) % len(RUNS)] + (f"_{i // cycle}" if i >= cycle else "")
    return f"course-v1:{org}+{subject}+{run}"


def fields(table: str) -> list[tuple[str, str]]:
    return [tuple(f.split(":")) for f in SCHEMA[table].split()]  # type: ignore[misc]


_td = dt.timedelta
