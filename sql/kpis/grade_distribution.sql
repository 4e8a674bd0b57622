-- name: grade_distribution
-- description: Persisted course grades created before the snapshot, by decile of the grade (0 = below 10%, 9 = 90% and above)
-- unit: grades
-- aggregation: last
SELECT
  least(CAST(floor(percent_grade * 10) AS BIGINT), 9) AS grade_decile,
  COUNT(*) AS value
FROM {{ table('grades_persistentcoursegrade') }}
WHERE created < {{ snapshot }} AND percent_grade IS NOT NULL
GROUP BY least(CAST(floor(percent_grade * 10) AS BIGINT), 9)
