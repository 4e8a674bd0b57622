-- name: active_learners_7d
-- description: Learners whose courseware state was last changed in the 7 days before the snapshot (a lower bound for past snapshots: a row keeps only its latest change)
-- unit: learners
-- aggregation: last
SELECT COUNT(DISTINCT student_id) AS value
FROM {{ table('courseware_studentmodule') }}
WHERE modified >= {{ snapshot }} - INTERVAL '7' DAY
  AND modified < {{ snapshot }}
