-- Enrolments per course and site: all of them, the active ones, by mode, distinct learners, first and last enrolment, with the course name.
WITH counts AS (
  SELECT
    lms,
    course_id,
    COUNT(*) AS enrollments,
    COUNT_IF(is_active = 1) AS active_enrollments,
    COUNT_IF(mode = 'verified') AS verified_enrollments,
    COUNT_IF(mode = 'audit') AS audit_enrollments,
    COUNT(DISTINCT user_id) AS learners,
    MIN(created) AS first_enrollment,
    MAX(created) AS last_enrollment
  FROM {{ table('student_courseenrollment') }}
  GROUP BY lms, course_id
)
SELECT
  e.lms,
  e.course_id,
  c.display_name AS course_name,
  e.enrollments,
  e.active_enrollments,
  e.verified_enrollments,
  e.audit_enrollments,
  e.learners,
  e.first_enrollment,
  e.last_enrollment
FROM counts AS e
LEFT JOIN {{ table('course_overviews_courseoverview') }} AS c
  ON c.lms = e.lms AND c.id = e.course_id
