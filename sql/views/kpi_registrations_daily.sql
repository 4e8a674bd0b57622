-- New user accounts per day (UTC) with the running total, and how many of that day's accounts never logged in.
WITH daily AS (
  SELECT
    lms,
    CAST(date_trunc('day', date_joined) AS DATE) AS registration_date,
    COUNT(*) AS new_users,
    COUNT_IF(last_login IS NULL) AS never_logged_in
  FROM {{ table('auth_user') }}
  WHERE date_joined IS NOT NULL
  GROUP BY lms, CAST(date_trunc('day', date_joined) AS DATE)
)
SELECT
  lms,
  registration_date,
  new_users,
  never_logged_in,
  CAST(SUM(new_users) OVER (
    PARTITION BY lms ORDER BY registration_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
  ) AS BIGINT) AS total_users
FROM daily
