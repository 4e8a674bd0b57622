-- name: new_users_daily
-- description: User accounts created in the day before the snapshot; compute at 00:00 UTC and sum over any span
-- unit: users
-- aggregation: sum
SELECT COUNT(*) AS value
FROM {{ table('auth_user') }}
WHERE date_joined >= {{ snapshot }} - INTERVAL '1' DAY
  AND date_joined < {{ snapshot }}
