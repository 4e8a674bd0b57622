-- name: new_enrollments_daily
-- description: Enrolments created in the day before the snapshot; compute at 00:00 UTC and sum over any span
-- unit: enrolments
-- aggregation: sum
SELECT COUNT(*) AS value
FROM {{ table('student_courseenrollment') }}
WHERE created >= {{ snapshot }} - INTERVAL '1' DAY
  AND created < {{ snapshot }}
