-- Courseware engagement per course: learners with activity, modules touched, problems answered, the average problem score (grade / max_grade), problem attempts (from the JSON state), the last activity.
SELECT
  lms,
  course_id,
  COUNT(DISTINCT student_id) AS active_learners,
  COUNT(*) AS modules_touched,
  COUNT_IF(module_type = 'problem' AND grade IS NOT NULL) AS problems_answered,
  AVG(CASE WHEN module_type = 'problem' AND max_grade > 0 THEN grade / max_grade END) AS average_problem_score,
  CAST(SUM(
    CASE WHEN module_type = 'problem'
      THEN TRY_CAST(TRY(json_extract_scalar(state, '$.attempts')) AS BIGINT)
    END
  ) AS BIGINT) AS problem_attempts,
  MAX(modified) AS last_activity
FROM {{ table('courseware_studentmodule') }}
GROUP BY lms, course_id
