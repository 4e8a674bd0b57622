-- name: problem_score_daily
-- description: Score of the problems answered in the day before the snapshot (points earned / points possible); compute at 00:00 UTC, sum the parts over any span
-- unit: ratio
-- numerator: points
-- denominator: possible
SELECT
  SUM(grade) AS points,
  SUM(max_grade) AS possible
FROM {{ table('courseware_studentmodule') }}
WHERE module_type = 'problem' AND max_grade > 0 AND grade IS NOT NULL
  AND modified >= {{ snapshot }} - INTERVAL '1' DAY
  AND modified < {{ snapshot }}
