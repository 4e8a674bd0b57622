-- Certificates per course: issued (status downloadable) in total and by mode, audit learners who passed (no certificate), certificates still generating or failed, first and last issue.
SELECT
  lms,
  course_id,
  COUNT_IF(status = 'downloadable') AS certificates,
  COUNT_IF(status = 'downloadable' AND mode = 'verified') AS verified_certificates,
  COUNT_IF(status = 'downloadable' AND mode = 'honor') AS honor_certificates,
  COUNT_IF(status = 'audit_passing') AS audit_passing,
  COUNT_IF(status IN ('generating', 'error')) AS pending_or_failed,
  MIN(CASE WHEN status = 'downloadable' THEN created_date END) AS first_certificate,
  MAX(CASE WHEN status = 'downloadable' THEN created_date END) AS last_certificate
FROM {{ table('certificates_generatedcertificate') }}
GROUP BY lms, course_id
