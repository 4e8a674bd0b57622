-- Enrolments per calendar month (UTC, month given by its first day): enrolments, distinct learners, courses enrolled in.
SELECT
  lms,
  CAST(date_trunc('month', created) AS DATE) AS enrollment_month,
  COUNT(*) AS enrollments,
  COUNT(DISTINCT user_id) AS learners,
  COUNT(DISTINCT course_id) AS courses
FROM {{ table('student_courseenrollment') }}
WHERE created IS NOT NULL
GROUP BY lms, CAST(date_trunc('month', created) AS DATE)
