-- name: total_users
-- description: User accounts created before the snapshot
-- unit: users
SELECT COUNT(*) FROM {{ table('auth_user') }} WHERE date_joined < {{ snapshot }}
