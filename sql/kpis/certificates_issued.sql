-- name: certificates_issued
-- description: Certificates issued (status downloadable) before the snapshot, by mode
-- unit: certificates
-- aggregation: last
SELECT mode, COUNT(*) AS value
FROM {{ table('certificates_generatedcertificate') }}
WHERE status = 'downloadable' AND created_date < {{ snapshot }}
GROUP BY mode
