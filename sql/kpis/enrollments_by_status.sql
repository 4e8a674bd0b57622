-- name: enrollments_by_status
-- description: Enrolments created up to the snapshot, active and inactive (the status the source holds now)
-- unit: enrolments
-- aggregation: last
SELECT
  CASE WHEN is_active = 1 THEN 'active' ELSE 'inactive' END AS status,
  COUNT(*) AS value
FROM {{ table('student_courseenrollment') }}
WHERE created < {{ snapshot }}
GROUP BY CASE WHEN is_active = 1 THEN 'active' ELSE 'inactive' END
