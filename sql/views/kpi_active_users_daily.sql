-- Daily active learners (UTC days): distinct users whose courseware state (a student-module row) was last modified that day; a lower bound for past days, since a row keeps only its latest change.
SELECT
  lms,
  CAST(date_trunc('day', modified) AS DATE) AS activity_date,
  COUNT(DISTINCT student_id) AS active_users,
  COUNT(DISTINCT course_id) AS active_courses,
  COUNT(*) AS modules_touched
FROM {{ table('courseware_studentmodule') }}
WHERE modified IS NOT NULL
GROUP BY lms, CAST(date_trunc('day', modified) AS DATE)
