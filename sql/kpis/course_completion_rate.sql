-- name: course_completion_rate
-- description: Per course, the share of active enrolments (created before the snapshot) whose learner passed before it
-- unit: ratio
-- numerator: passed
-- denominator: enrolled
-- aggregation: last
SELECT
  e.course_id,
  COUNT(*) AS enrolled,
  COUNT(CASE WHEN g.passed_timestamp < {{ snapshot }} THEN 1 END) AS passed
FROM {{ table('student_courseenrollment') }} AS e
LEFT JOIN {{ table('grades_persistentcoursegrade') }} AS g
  ON g.course_id = e.course_id AND g.user_id = e.user_id
WHERE e.is_active = 1 AND e.created < {{ snapshot }}
GROUP BY e.course_id
