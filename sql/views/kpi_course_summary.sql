-- One row per course (from the course overviews): name, org, dates, and its enrolment, engagement, completion and certificate KPIs, read from the other KPI views.
SELECT
  c.lms,
  c.id AS course_id,
  c.display_name AS course_name,
  c.org,
  c."start" AS course_start,
  c."end" AS course_end,
  COALESCE(e.enrollments, 0) AS enrollments,
  COALESCE(e.active_enrollments, 0) AS active_enrollments,
  COALESCE(g.active_learners, 0) AS active_learners,
  COALESCE(p.passed, 0) AS passed,
  p.completion_rate,
  COALESCE(k.certificates, 0) AS certificates
FROM {{ table('course_overviews_courseoverview') }} AS c
LEFT JOIN kpi_enrollments_per_course AS e ON e.lms = c.lms AND e.course_id = c.id
LEFT JOIN kpi_course_engagement AS g ON g.lms = c.lms AND g.course_id = c.id
LEFT JOIN kpi_course_completion AS p ON p.lms = c.lms AND p.course_id = c.id
LEFT JOIN kpi_certificates_per_course AS k ON k.lms = c.lms AND k.course_id = c.id
