-- Test harness example: a simple filter
SELECT id, status FROM events WHERE status = 'error';
