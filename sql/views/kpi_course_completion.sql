-- Course completion: of each course's active enrolments, how many have a persisted course grade and how many passed (passed_timestamp set); the pass rate and the average grade.
SELECT
  e.lms,
  e.course_id,
  COUNT(*) AS enrolled,
  COUNT(g.user_id) AS graded,
  COUNT_IF(g.passed_timestamp IS NOT NULL) AS passed,
  CAST(COUNT_IF(g.passed_timestamp IS NOT NULL) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) AS completion_rate,
  AVG(g.percent_grade) AS average_grade
FROM {{ table('student_courseenrollment') }} AS e
LEFT JOIN {{ table('grades_persistentcoursegrade') }} AS g
  ON g.lms = e.lms AND g.course_id = e.course_id AND g.user_id = e.user_id
WHERE e.is_active = 1
GROUP BY e.lms, e.course_id
