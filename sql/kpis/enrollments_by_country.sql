-- name: enrollments_by_country
-- description: Enrolments created before the snapshot by the learner's profile country ('unknown' when not given)
-- unit: enrolments
-- aggregation: last
SELECT
  COALESCE(NULLIF(p.country, ''), 'unknown') AS country,
  COUNT(*) AS value
FROM {{ table('student_courseenrollment') }} AS e
LEFT JOIN {{ table('auth_userprofile') }} AS p ON p.user_id = e.user_id
WHERE e.created < {{ snapshot }}
GROUP BY COALESCE(NULLIF(p.country, ''), 'unknown')
