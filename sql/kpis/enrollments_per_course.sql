-- name: enrollments_per_course
-- description: Enrolments per course created up to the snapshot (active or not)
-- unit: enrolments
-- aggregation: last
SELECT course_id, COUNT(*) AS value
FROM {{ table('student_courseenrollment') }}
WHERE created < {{ snapshot }}
GROUP BY course_id
