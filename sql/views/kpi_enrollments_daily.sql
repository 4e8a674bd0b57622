-- New enrolments per day (UTC) and course, with the running total of each course's enrolments.
WITH daily AS (
  SELECT
    lms,
    course_id,
    CAST(date_trunc('day', created) AS DATE) AS enrollment_date,
    COUNT(*) AS enrollments,
    COUNT_IF(mode = 'verified') AS verified_enrollments
  FROM {{ table('student_courseenrollment') }}
  WHERE created IS NOT NULL
  GROUP BY lms, course_id, CAST(date_trunc('day', created) AS DATE)
)
SELECT
  lms,
  enrollment_date,
  course_id,
  enrollments,
  verified_enrollments,
  CAST(SUM(enrollments) OVER (
    PARTITION BY lms, course_id ORDER BY enrollment_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
  ) AS BIGINT) AS cumulative_enrollments
FROM daily
